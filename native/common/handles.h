// The native classes whose objects JS passes back into the addon as handles: a tokenizer into the preprocess job,
// the token lists of a preprocess job into the shard writer, token datasets into the schedule build and the loader,
// a schedule into the loader. Their constructors are kept
// per environment (instance data), so an argument is checked to be one of ours before it is unwrapped.
#pragma once
#include <napi.h>

namespace octomix {

struct Handles {
  Napi::FunctionReference tokenizer;
  Napi::FunctionReference tokenLists;
  Napi::FunctionReference tokenDataset;
  Napi::FunctionReference schedule;
};

// This environment's handle table, created on first use and freed with the environment.
inline Handles& handles(Napi::Env env) {
  Handles* table = env.GetInstanceData<Handles>();
  if (table == nullptr) {
    table = new Handles();
    env.SetInstanceData(table);
  }
  return *table;
}

// The wrapped object if `value` is an instance of `constructor`, else nullptr.
template <typename Wrap>
Wrap* unwrapHandle(Napi::Value value, const Napi::FunctionReference& constructor) {
  if (constructor.IsEmpty() || !value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.InstanceOf(constructor.Value())) return nullptr;
  return Wrap::Unwrap(object);
}

}  // namespace octomix
