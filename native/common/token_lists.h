// Token id lists that stay native between two calls: encodeJsonLines leaves each line's ids in one of these, and the
// shard writer (ShardWriter.addEncodedLines) copies them straight into its buffers, so a batch's ids are never copied
// into JS arrays, nor framed with BOS/EOS there, on the main thread. JS holds the object only as an opaque handle:
// its constructor is not exported, and release() frees the ids as soon as they are written rather than at the next
// garbage collection (V8 does not see this memory).
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "common/handles.h"

namespace octomix {

class TokenListsWrap : public Napi::ObjectWrap<TokenListsWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TokenLists", {InstanceMethod<&TokenListsWrap::release>("release")});
  }
  explicit TokenListsWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenListsWrap>(info) {}

  // A new, empty object of this environment (registerTokenLists must have run).
  static Napi::Object create(Napi::Env env) { return handles(env).tokenLists.New({}); }

  std::vector<std::vector<uint32_t>> lists;
  bool released = false;

 private:
  Napi::Value release(const Napi::CallbackInfo& info) {
    std::vector<std::vector<uint32_t>>().swap(lists);
    released = true;
    return info.Env().Undefined();
  }
};

// The wrapped lists if `value` is a TokenLists object of this environment, else nullptr.
inline TokenListsWrap* unwrapTokenLists(Napi::Env env, Napi::Value value) { return unwrapHandle<TokenListsWrap>(value, handles(env).tokenLists); }

inline void registerTokenLists(Napi::Env env) {
  if (handles(env).tokenLists.IsEmpty()) handles(env).tokenLists = Napi::Persistent(TokenListsWrap::define(env));
}

}  // namespace octomix
