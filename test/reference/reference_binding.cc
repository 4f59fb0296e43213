// Tests only: a separate small addon (build/Release/octomix_reference.node, built from this folder when it is
// present, as the CUDA stand-in is) with the Megatron reference the concat tests compare the loader with, so the
// product does not ship code that only a test uses. test/helpers/reference.ts loads it.
#include <napi.h>

#include <cstring>
#include <exception>
#include <vector>

#include "gpt_indices.h"

namespace {

// buildGptIndices(lengths: Int32Array, seqLength: number, numSamples: number, seed: number)
//   -> { epochs, separateFinalEpoch, documentIndex: Int32Array, sampleIndex: Float64Array (pairs), shuffleIndex: Float64Array }
Napi::Value buildGptIndicesBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "buildGptIndices(lengths: Int32Array, seqLength, numSamples, seed)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  try {
    Napi::Int32Array lengthsArray = info[0].As<Napi::Int32Array>();
    std::vector<int32_t> lengths(lengthsArray.Data(), lengthsArray.Data() + lengthsArray.ElementLength());
    octomix::reference::GptIndices indices = octomix::reference::buildGptIndices(
        lengths, static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
        static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()), info[3].As<Napi::Number>().Uint32Value());
    Napi::Object result = Napi::Object::New(env);
    result.Set("epochs", Napi::Number::New(env, indices.epochs));
    result.Set("separateFinalEpoch", Napi::Boolean::New(env, indices.separateFinalEpoch));
    Napi::Int32Array documentIndex = Napi::Int32Array::New(env, indices.documentIndex.size());
    if (!indices.documentIndex.empty()) std::memcpy(documentIndex.Data(), indices.documentIndex.data(), indices.documentIndex.size() * 4);
    result.Set("documentIndex", documentIndex);
    Napi::Float64Array sampleIndex = Napi::Float64Array::New(env, indices.sampleIndex.size());
    for (size_t i = 0; i < indices.sampleIndex.size(); ++i) sampleIndex[i] = static_cast<double>(indices.sampleIndex[i]);
    result.Set("sampleIndex", sampleIndex);
    Napi::Float64Array shuffleIndex = Napi::Float64Array::New(env, indices.shuffleIndex.size());
    for (size_t i = 0; i < indices.shuffleIndex.size(); ++i) shuffleIndex[i] = static_cast<double>(indices.shuffleIndex[i]);
    result.Set("shuffleIndex", shuffleIndex);
    return result;
  } catch (const std::exception& error) {
    Napi::Error::New(env, std::string("buildGptIndices: ") + error.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}


Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildGptIndices", Napi::Function::New(env, buildGptIndicesBinding, "buildGptIndices"));
  return exports;
}

}  // namespace

NODE_API_MODULE(octomix_reference, init)
