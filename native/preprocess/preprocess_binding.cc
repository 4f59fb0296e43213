// N-API face of preprocessing: the JSON Lines and packed-text jobs of `octomix tokenize` (src/preprocess), on octomix's
// pool, whose ids stay native in a TokenLists handle (common/token_lists.h) for the shard writer, and decompression
// (Zstandard through zstd_library.h, Snappy through snappy.h) for the reader threads of .zst inputs and Parquet pages.
// The jobs take a native Tokenizer object as a handle (tokenizer/tokenizer_binding.h); the decompression entry points
// are synchronous and meant for worker threads, which load the addon themselves.
#include "preprocess/preprocess_binding.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "common/napi_helpers.h"
#include "common/token_lists.h"
#include "preprocess/json_lines.h"
#include "preprocess/snappy.h"
#include "preprocess/zstd_library.h"
#include "tokenizer/unicode.h"
#include "tokenizer/tokenizer_binding.h"

namespace octomix {

namespace {

struct LineWorker {
  std::unique_ptr<EncodeScratch> scratch;
  std::string repaired;  // a line's bytes after UTF-8 repair
};

class JsonLinesJob : public PoolJob<LineWorker> {
 public:
  using PoolJob::PoolJob;
  std::shared_ptr<const Tokenizer> tokenizer;
  // The caller's parts, read in place (neither copied nor joined on the main thread): `inputs` keep them alive until
  // settle(), which deletes the references on the main thread. Raw napi_refs, not Napi::References, because the
  // job's last owner may be a pool thread, where no reference may be touched.
  std::vector<napi_ref> inputs;
  std::vector<std::string> field;  // dotted path, split
  std::vector<std::string_view> lines;
  std::deque<std::string> joined;  // the lines that ran across parts
  std::vector<std::vector<uint32_t>> results;
  std::vector<int32_t> status;
  std::vector<uint8_t> invalidUtf8;
  std::vector<std::string> messages;
  std::vector<uint8_t> specialText;
  bool addSpecialTokens = false;
  bool specialAsText = false;

 protected:
  void beginWorker(LineWorker& worker) override { worker.scratch = tokenizer->borrowScratch(); }
  void endWorker(LineWorker& worker) override { tokenizer->returnScratch(std::move(worker.scratch)); }
  void runItem(size_t index, LineWorker& worker) override {
    preprocess::EncodedLine line = preprocess::encodeLine(*tokenizer, lines[index], field, addSpecialTokens,
                                                          results[index], *worker.scratch, worker.repaired, specialAsText);
    status[index] = line.status;
    specialText[index] = line.specialText ? 1 : 0;
    invalidUtf8[index] = line.invalidUtf8 ? 1 : 0;
    messages[index] = std::move(line.message);
  }

  void settle(Napi::Env env) override {
    releaseInputs(env);
    if (rejectIfFailed(env, "encodeJsonLines")) return;
    size_t count = lines.size();
    Napi::Object lists = TokenListsWrap::create(env);
    Napi::Uint32Array jsCounts = Napi::Uint32Array::New(env, count);
    Napi::Int32Array jsStatus = Napi::Int32Array::New(env, count);
    Napi::Uint8Array jsInvalid = Napi::Uint8Array::New(env, count);
    Napi::Float64Array jsLineBytes = Napi::Float64Array::New(env, count);
    Napi::Array jsMessages = Napi::Array::New(env, count);
    for (size_t i = 0; i < count; ++i) {
      jsCounts[i] = static_cast<uint32_t>(results[i].size());
      jsStatus[i] = status[i];
      jsInvalid[i] = invalidUtf8[i];
      jsLineBytes[i] = static_cast<double>(lines[i].size() + 1);
      if (!messages[i].empty()) jsMessages.Set(static_cast<uint32_t>(i), messages[i]);
    }
    TokenListsWrap::Unwrap(lists)->lists = std::move(results);
    Napi::Object result = Napi::Object::New(env);
    result.Set("lists", lists);
    result.Set("tokenCounts", jsCounts);
    result.Set("status", jsStatus);
    result.Set("invalidUtf8", jsInvalid);
    result.Set("lineBytes", jsLineBytes);
    result.Set("messages", jsMessages);
    Napi::Uint8Array jsSpecial = Napi::Uint8Array::New(env, count);
    if (count > 0) std::memcpy(jsSpecial.Data(), specialText.data(), count);
    result.Set("specialText", jsSpecial);
    deferred.Resolve(result);
  }

 public:
  void releaseInputs(Napi::Env env) {
    for (napi_ref input : inputs) napi_delete_reference(env, input);
    inputs.clear();
  }
};

// encodeJsonLines(tokenizer, parts: Uint8Array[], field: string[], addSpecialTokens: boolean, threads: number,
//   specialAsText?: boolean): Promise<{ lists: TokenLists, tokenCounts: Uint32Array, status: Int32Array,
//   invalidUtf8: Uint8Array, lineBytes: Float64Array, messages: string[], specialText: Uint8Array }>
// One entry per '\n'-terminated line of the parts taken as one byte string (a last line without '\n' counts too). The
// parts are read in place: the caller must not change them (nor transfer their buffers) until the promise settles.
Napi::Value encodeJsonLinesBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<JsonLinesJob> job;
  try {
    std::shared_ptr<const Tokenizer> tokenizer = info.Length() > 0 ? unwrapTokenizer(env, info[0]) : nullptr;
    if (!tokenizer || info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) {
      Napi::TypeError::New(env, "encodeJsonLines(tokenizer: native Tokenizer, parts: Uint8Array[], field: string[], addSpecialTokens, threads)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    job = std::make_shared<JsonLinesJob>(env);
    job->tokenizer = std::move(tokenizer);
    Napi::Array parts = info[1].As<Napi::Array>();
    std::vector<std::string_view> views;
    for (uint32_t i = 0; i < parts.Length(); ++i) {
      Napi::Value part = parts.Get(i);
      if (!part.IsTypedArray() || part.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        job->releaseInputs(env);
        Napi::TypeError::New(env, "encodeJsonLines: parts[" + std::to_string(i) + "] must be a Uint8Array").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array bytes = part.As<Napi::Uint8Array>();
      napi_ref input = nullptr;
      if (napi_create_reference(env, bytes, 1, &input) != napi_ok) {
        job->releaseInputs(env);
        return throwCoded(env, "octomix: encodeJsonLines failed: cannot hold the input bytes", Status::kInternal);
      }
      job->inputs.push_back(input);
      views.emplace_back(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
    }
    Napi::Array field = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < field.Length(); ++i) job->field.push_back(field.Get(i).ToString().Utf8Value());
    job->addSpecialTokens = info.Length() >= 4 && info[3].ToBoolean().Value();
    size_t threads = ThreadPool::shared().size();
    if (info.Length() >= 5 && info[4].IsNumber() && info[4].As<Napi::Number>().Int64Value() >= 1) {
      threads = static_cast<size_t>(info[4].As<Napi::Number>().Int64Value());
    }
    job->specialAsText = info.Length() >= 6 && info[5].ToBoolean().Value();
    job->lines = preprocess::splitLines(views, job->joined);
    size_t count = job->lines.size();
    job->results.resize(count);
    job->status.assign(count, preprocess::kLineOk);
    job->invalidUtf8.assign(count, 0);
    job->messages.resize(count);
    job->specialText.assign(count, 0);
    return job->start(env, count, threads, "octomix.encodeJsonLines");
  } catch (const std::exception& error) {
    // Failures come before start() hands the job to the pool (argument conversion, splitting, allocation), when
    // nothing else reads the parts yet. An allocation failure inside start() itself, after some workers were queued,
    // is the one case this does not cover.
    if (job) job->releaseInputs(env);
    return throwCoded(env, std::string("octomix: encodeJsonLines failed: ") + error.what(), Status::kInternal);
  }
}

// Texts packed end to end in one buffer, text i being bytes [offsets[i], offsets[i + 1]): the string values of a
// Parquet slice as its decoding thread packs them (src/preprocess/parquet-texts.ts). Encoded on the pool like a JSON
// Lines batch, with the ids left in a TokenLists handle for the shard writer; each text's UTF-8 is checked (and
// repaired to U+FFFD) here, so the main thread does not run isUtf8 over every value.
class PackedTextsJob : public PoolJob<LineWorker> {
 public:
  using PoolJob::PoolJob;
  std::shared_ptr<const Tokenizer> tokenizer;
  napi_ref input = nullptr;  // the packed bytes, read in place until settle() (deleted there, on the main thread)
  const uint8_t* bytes = nullptr;
  std::vector<uint32_t> offsets;
  std::vector<std::vector<uint32_t>> results;
  std::vector<uint8_t> invalidUtf8;
  std::vector<uint8_t> specialText;
  bool addSpecialTokens = false;
  bool specialAsText = false;

  void releaseInput(Napi::Env env) {
    if (input != nullptr) napi_delete_reference(env, input);
    input = nullptr;
  }

 protected:
  void beginWorker(LineWorker& worker) override { worker.scratch = tokenizer->borrowScratch(); }
  void endWorker(LineWorker& worker) override { tokenizer->returnScratch(std::move(worker.scratch)); }
  void runItem(size_t index, LineWorker& worker) override {
    const uint8_t* text = bytes + offsets[index];
    const size_t length = offsets[index + 1] - offsets[index];
    std::string_view view(reinterpret_cast<const char*>(text), length);
    if (unicode::validUtf8Prefix(text, length) != length) {
      unicode::sanitizeUtf8(text, length, worker.repaired);
      view = worker.repaired;
      invalidUtf8[index] = 1;
    }
    bool seen = false;
    results[index].reserve(length / 3 + 8);
    tokenizer->encode(view, addSpecialTokens, results[index], *worker.scratch, {specialAsText, &seen});
    specialText[index] = seen ? 1 : 0;
  }

  void settle(Napi::Env env) override {
    releaseInput(env);
    if (rejectIfFailed(env, "encodePackedTexts")) return;
    const size_t count = results.size();
    Napi::Object lists = TokenListsWrap::create(env);
    Napi::Uint32Array jsCounts = Napi::Uint32Array::New(env, count);
    for (size_t i = 0; i < count; ++i) jsCounts[i] = static_cast<uint32_t>(results[i].size());
    TokenListsWrap::Unwrap(lists)->lists = std::move(results);
    Napi::Uint8Array jsInvalid = Napi::Uint8Array::New(env, count);
    Napi::Uint8Array jsSpecial = Napi::Uint8Array::New(env, count);
    if (count > 0) {
      std::memcpy(jsInvalid.Data(), invalidUtf8.data(), count);
      std::memcpy(jsSpecial.Data(), specialText.data(), count);
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("lists", lists);
    result.Set("tokenCounts", jsCounts);
    result.Set("invalidUtf8", jsInvalid);
    result.Set("specialText", jsSpecial);
    deferred.Resolve(result);
  }
};

// encodePackedTexts(tokenizer, bytes: Uint8Array, offsets: Uint32Array, addSpecialTokens: boolean, threads: number,
//   specialAsText?: boolean): Promise<{ lists: TokenLists, tokenCounts: Uint32Array, invalidUtf8: Uint8Array,
//   specialText: Uint8Array }>
// offsets.length - 1 texts; the offsets must not decrease and must lie within bytes. The bytes are read in place:
// the caller must not change them (nor transfer their buffer) until the promise settles.
Napi::Value encodePackedTextsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<PackedTextsJob> job;
  bool started = false;
  try {
    std::shared_ptr<const Tokenizer> tokenizer = info.Length() > 0 ? unwrapTokenizer(env, info[0]) : nullptr;
    const auto isTyped = [&](size_t index, napi_typedarray_type type) {
      return info.Length() > index && info[index].IsTypedArray() && info[index].As<Napi::TypedArray>().TypedArrayType() == type;
    };
    if (!tokenizer || !isTyped(1, napi_uint8_array) || !isTyped(2, napi_uint32_array)) {
      Napi::TypeError::New(env, "encodePackedTexts(tokenizer: native Tokenizer, bytes: Uint8Array, offsets: Uint32Array, addSpecialTokens, threads)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    Napi::Uint32Array offsets = info[2].As<Napi::Uint32Array>();
    const size_t size = offsets.ElementLength();
    for (size_t i = 0; i < size; ++i) {
      if (offsets[i] > bytes.ByteLength() || (i > 0 && offsets[i] < offsets[i - 1])) {
        Napi::RangeError::New(env, "encodePackedTexts: offsets[" + std::to_string(i) + "] = " + std::to_string(offsets[i]) +
                                       " is out of order or past the " + std::to_string(bytes.ByteLength()) + " bytes").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    job = std::make_shared<PackedTextsJob>(env);
    job->tokenizer = std::move(tokenizer);
    job->offsets.assign(offsets.Data(), offsets.Data() + size);
    const size_t count = size > 0 ? size - 1 : 0;
    job->results.resize(count);
    job->invalidUtf8.assign(count, 0);
    job->specialText.assign(count, 0);
    job->addSpecialTokens = info.Length() >= 4 && info[3].ToBoolean().Value();
    size_t threads = ThreadPool::shared().size();
    if (info.Length() >= 5 && info[4].IsNumber() && info[4].As<Napi::Number>().Int64Value() >= 1) {
      threads = static_cast<size_t>(info[4].As<Napi::Number>().Int64Value());
    }
    job->specialAsText = info.Length() >= 6 && info[5].ToBoolean().Value();
    if (napi_create_reference(env, bytes, 1, &job->input) != napi_ok) {
      job->input = nullptr;
      return throwCoded(env, "octomix: encodePackedTexts failed: cannot hold the input bytes", Status::kInternal);
    }
    job->bytes = bytes.Data();
    started = true;
    return job->start(env, count, threads, "octomix.encodePackedTexts");
  } catch (const std::exception& error) {
    // Before start(), nothing else reads the bytes: release them. A failure inside start() (an allocation, after some
    // workers may have been queued) keeps the reference rather than free what a worker may still read.
    if (job && !started) job->releaseInput(env);
    return throwCoded(env, std::string("octomix: encodePackedTexts failed: ") + error.what(), Status::kInternal);
  }
}

// A copy in a plain ArrayBuffer (not an external one): reader threads transfer it to the main thread.
Napi::Value copyOut(Napi::Env env, const uint8_t* data, size_t size) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, size);
  if (env.IsExceptionPending() || buffer.IsEmpty() || (size > 0 && buffer.Data() == nullptr)) {
    if (!env.IsExceptionPending()) Napi::Error::New(env, "cannot allocate " + std::to_string(size) + " bytes of decompressed data").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (size > 0) std::memcpy(buffer.Data(), data, size);
  return Napi::Uint8Array::New(env, size, buffer, 0);
}

// new ZstdStream(); push(bytes) takes compressed bytes; read(max) gives up to max decoded bytes (empty once the input
// pushed so far is used up); end() throws when the input stopped inside a frame.
class ZstdStreamWrap : public Napi::ObjectWrap<ZstdStreamWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ZstdStream", {InstanceMethod("push", &ZstdStreamWrap::push), InstanceMethod("read", &ZstdStreamWrap::read),
                                           InstanceMethod("end", &ZstdStreamWrap::end)});
  }
  explicit ZstdStreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ZstdStreamWrap>(info) {
    if (!zstd::library().loaded) Napi::Error::New(info.Env(), "zstd is not available: " + zstd::library().loadError).ThrowAsJavaScriptException();
  }

 private:
  Napi::Value push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(env, "push(bytes): bytes must be a Uint8Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
    stream_.push(input.Data(), input.ByteLength());
    return env.Undefined();
  }
  Napi::Value read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const double max = info.Length() >= 1 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(max >= 1 && max <= 1073741824.0)) {
      Napi::RangeError::New(env, "read(max): max must be from 1 to 2^30 bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    output_.clear();
    std::string error;
    if (!stream_.read(static_cast<size_t>(max), output_, error)) {
      Napi::Error::New(env, "corrupt zstd data: " + error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return copyOut(env, output_.data(), output_.size());
  }
  Napi::Value end(const Napi::CallbackInfo& info) {
    if (!stream_.atFrameEnd()) Napi::Error::New(info.Env(), "truncated zstd data: the input ends inside a frame").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }

  zstd::Stream stream_;
  std::vector<uint8_t> output_;
};

// The face of a Parquet page decoder: decompress(bytes, outputLength) gives exactly outputLength bytes (a page's size
// is an int32). `checkHeader` reads the compressed data's own length first, so a corrupt page header never makes us
// allocate what it claims; `decode` fills the buffer. Errors are "corrupt <codec> data: ..." and no C++ exception
// leaves (an allocation failure building a message becomes a coded error).
template <typename CheckHeader, typename Decode>
Napi::Value decompressPage(const Napi::CallbackInfo& info, const char* name, const char* codec, CheckHeader checkHeader, Decode decode) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !info[1].IsNumber()) {
      Napi::TypeError::New(env, std::string(name) + "(bytes, outputLength): a Uint8Array and a length").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
    const double requested = info[1].As<Napi::Number>().DoubleValue();
    if (!(requested >= 0 && requested <= 2147483647.0) || requested != static_cast<double>(static_cast<uint64_t>(requested))) {
      Napi::RangeError::New(env, std::string(name) + ": outputLength must be an integer from 0 to 2^31 - 1").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const size_t length = static_cast<size_t>(requested);
    std::string error;
    if (!checkHeader(input.Data(), input.ByteLength(), length, error)) {
      Napi::Error::New(env, std::string("corrupt ") + codec + " data: " + error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, length);
    if (env.IsExceptionPending() || buffer.IsEmpty() || (length > 0 && buffer.Data() == nullptr)) {
      if (!env.IsExceptionPending()) Napi::Error::New(env, std::string(name) + ": cannot allocate " + std::to_string(length) + " bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!decode(input.Data(), input.ByteLength(), static_cast<uint8_t*>(buffer.Data()), length, error)) {
      Napi::Error::New(env, std::string("corrupt ") + codec + " data: " + error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Uint8Array::New(env, length, buffer, 0);
  } catch (const std::exception& error) {
    return throwCoded(env, std::string("octomix: ") + name + " failed: " + error.what(), Status::kInternal);
  }
}

// zstdDecompress(bytes, outputLength): one frame (a Parquet page), checked against the frame's content size.
Napi::Value zstdDecompressBinding(const Napi::CallbackInfo& info) {
  return decompressPage(info, "zstdDecompress", "zstd", zstd::checkFrameSize, zstd::decompressExact);
}

// snappyDecompress(bytes, outputLength): one Snappy block (a Parquet page; snappy.h), checked against the length the
// block declares.
Napi::Value snappyDecompressBinding(const Napi::CallbackInfo& info) {
  const auto checkDeclared = [](const uint8_t* data, size_t size, size_t expected, std::string& error) {
    size_t declared = 0;
    size_t header = 0;
    if (snappy::declaredLength(data, size, declared, header) && declared == expected) return true;
    error = "the block's declared length is not the page's " + std::to_string(expected) + " bytes";
    return false;
  };
  return decompressPage(info, "snappyDecompress", "snappy", checkDeclared, snappy::decompressExact);
}

// zstdLibrary(): { loaded, library, version, error } of the system libzstd (loaded on first call).
Napi::Value zstdLibraryBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const zstd::Library& zstd = zstd::library();
  Napi::Object result = Napi::Object::New(env);
  result.Set("loaded", zstd.loaded);
  result.Set("library", zstd.name);
  result.Set("version", zstd.version);
  result.Set("error", zstd.loadError);
  return result;
}

}  // namespace

void registerPreprocess(Napi::Env env, Napi::Object exports) {
  registerTokenLists(env);
  exports.Set("encodeJsonLines", Napi::Function::New(env, encodeJsonLinesBinding, "encodeJsonLines"));
  exports.Set("encodePackedTexts", Napi::Function::New(env, encodePackedTextsBinding, "encodePackedTexts"));
  exports.Set("ZstdStream", ZstdStreamWrap::define(env));
  exports.Set("zstdDecompress", Napi::Function::New(env, zstdDecompressBinding, "zstdDecompress"));
  exports.Set("snappyDecompress", Napi::Function::New(env, snappyDecompressBinding, "snappyDecompress"));
  exports.Set("zstdLibrary", Napi::Function::New(env, zstdLibraryBinding, "zstdLibrary"));
}

}  // namespace octomix
