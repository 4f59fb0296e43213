// N-API face of the Megatron shard writer and of token datasets, wrapped by src/shards/*.ts. Errors carry a code
// (common/status.h): SHARD_FORMAT for a bad pair (the message names the file and what is wrong), SHARD_IO for
// system errors (errno text, e.g. "No space left on device"), SHARD_ID for a token id that does not fit the dtype.
#include "shards/shards_binding.h"
#include "common/file.h"
#include <cerrno>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>

#include <cstring>
#include <exception>
#include <memory>

#include "common/napi_helpers.h"
#include "common/handles.h"
#include "common/token_lists.h"
#include "common/sha256.h"
#include "shards/indexed_dataset.h"
#include "shards/token_dataset.h"

namespace octomix {

namespace {

class ShardWriterWrap : public Napi::ObjectWrap<ShardWriterWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ShardWriter",
                       {
                           InstanceMethod<&ShardWriterWrap::addDocument>("addDocument"),
                           InstanceMethod<&ShardWriterWrap::addEncodedLines>("addEncodedLines"),
                           InstanceMethod<&ShardWriterWrap::finish>("finish"),
                           InstanceMethod<&ShardWriterWrap::abort>("abort"),
                       });
  }

  // new ShardWriter(prefix: string, dtypeCode: number)
  explicit ShardWriterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ShardWriterWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "ShardWriter(prefix: string, dtypeCode: number)").ThrowAsJavaScriptException();
      return;
    }
    try {
      writer_ = std::make_unique<shards::ShardWriter>(info[0].As<Napi::String>().Utf8Value(),
                                                      static_cast<uint8_t>(info[1].As<Napi::Number>().Uint32Value()));
      std::string error;
      if (!writer_->open(error)) {
        writer_.reset();
        throwCoded(env, error, Status::kShardIo);
      }
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: shard writer: ") + error.what(), Status::kInternal);
    }
  }

 private:
  bool ready(Napi::Env env) {
    if (writer_) return true;
    throwCoded(env, "the shard writer is closed", Status::kShardClosed);
    return false;
  }

  // addDocument(ids: Uint32Array)
  Napi::Value addDocument(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      Napi::TypeError::New(env, "ids must be a Uint32Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
    try {
      std::string error;
      shards::AddProblem problem;
      if (!writer_->addDocument(ids.Data(), ids.ElementLength(), error, problem)) {
        return throwCoded(env, error, problem == shards::AddProblem::kTokenId ? Status::kShardId : Status::kShardIo);
      }
    } catch (const std::exception& error) {
      return throwCoded(env, std::string("octomix: shard write failed: ") + error.what(), Status::kInternal);
    }
    return env.Undefined();
  }

  // addEncodedLines(lists: TokenLists, lines: Uint32Array, bos: number, eos: number, ones: boolean)
  //   : { tokens, sequences }
  // The documents lists[lines[0]], lists[lines[1]], ... in that order, each non-empty one framed by `bos`/`eos` (ids,
  // or -1 for none), or written as ones (a loss mask that trains on everything); returns what was written. A line
  // out of range, or lists already released, is refused before anything is written.
  Napi::Value addEncodedLines(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env)) return env.Undefined();
    TokenListsWrap* holder = info.Length() > 0 ? unwrapTokenLists(env, info[0]) : nullptr;
    if (holder == nullptr || info.Length() < 5 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        !info[2].IsNumber() || !info[3].IsNumber()) {
      Napi::TypeError::New(env, "addEncodedLines(lists: TokenLists, lines: Uint32Array, bos: number, eos: number, ones: boolean)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    shards::Framing framing;
    const double bos = info[2].As<Napi::Number>().DoubleValue(), eos = info[3].As<Napi::Number>().DoubleValue();
    for (double id : {bos, eos}) {
      if (!(id == -1 || (id >= 0 && id <= 4294967295.0 && id == static_cast<double>(static_cast<int64_t>(id))))) {
        Napi::RangeError::New(env, "addEncodedLines: bos and eos must be token ids or -1").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    framing.bos = static_cast<int64_t>(bos);
    framing.eos = static_cast<int64_t>(eos);
    framing.ones = info[4].ToBoolean().Value();
    Napi::Uint32Array lines = info[1].As<Napi::Uint32Array>();
    const std::vector<std::vector<uint32_t>>& lists = holder->lists;
    if (holder->released) {
      Napi::Error::New(env, "addEncodedLines: these token lists were released").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (size_t i = 0; i < lines.ElementLength(); ++i) {
      if (lines[i] >= lists.size()) {
        Napi::RangeError::New(env, "addEncodedLines: line " + std::to_string(lines[i]) + " is not among the " + std::to_string(lists.size()) + " lines").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    const uint64_t tokensBefore = writer_->tokens(), sequencesBefore = writer_->sequences();
    try {
      std::string error;
      shards::AddProblem problem;
      for (size_t i = 0; i < lines.ElementLength(); ++i) {
        const std::vector<uint32_t>& ids = lists[lines[i]];
        if (!writer_->addDocument(ids.data(), ids.size(), framing, error, problem)) {
          return throwCoded(env, error, problem == shards::AddProblem::kTokenId ? Status::kShardId : Status::kShardIo);
        }
      }
    } catch (const std::exception& error) {
      return throwCoded(env, std::string("octomix: shard write failed: ") + error.what(), Status::kInternal);
    }
    Napi::Object written = Napi::Object::New(env);
    written.Set("tokens", Napi::Number::New(env, static_cast<double>(writer_->tokens() - tokensBefore)));
    written.Set("sequences", Napi::Number::New(env, static_cast<double>(writer_->sequences() - sequencesBefore)));
    return written;
  }

  // The counts finish() returns (the TS layer keeps its own running counts: a native call per document cost 3%).
  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    if (!writer_) return result;
    result.Set("sequences", Napi::Number::New(env, static_cast<double>(writer_->sequences())));
    result.Set("documents", Napi::Number::New(env, static_cast<double>(writer_->documents())));
    result.Set("tokens", Napi::Number::New(env, static_cast<double>(writer_->tokens())));
    result.Set("binBytes", Napi::Number::New(env, static_cast<double>(writer_->binBytes())));
    return result;
  }

  // finish(): syncs, writes the index, renames both files into place; returns stats().
  Napi::Value finish(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ready(env)) return env.Undefined();
    Napi::Value result = stats(info);
    try {
      std::string error;
      bool ok = writer_->finish(error);
      if (!ok) {
        writer_->abort();
        writer_.reset();
        return throwCoded(env, error, Status::kShardIo);
      }
      result.As<Napi::Object>().Set("digest", writer_->digest());
      writer_.reset();
    } catch (const std::exception& error) {
      writer_.reset();
      return throwCoded(env, std::string("octomix: shard finish failed: ") + error.what(), Status::kInternal);
    }
    return result;
  }

  // abort(): removes the temporary files; nothing is left under the final names.
  Napi::Value abort(const Napi::CallbackInfo& info) {
    if (writer_) {
      writer_->abort();
      writer_.reset();
    }
    return info.Env().Undefined();
  }

  std::unique_ptr<shards::ShardWriter> writer_;
};

// A token dataset (shards/token_dataset.h): many shard pairs as one document sequence, opened once. JS passes these
// objects back as handles to the schedule build and the loader, so a recipe's shards are opened and validated
// once per process.
class TokenDatasetWrap : public Napi::ObjectWrap<TokenDatasetWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TokenDataset",
                       {
                           InstanceMethod<&TokenDatasetWrap::info>("info"),
                           InstanceMethod<&TokenDatasetWrap::document>("document"),
                           InstanceMethod<&TokenDatasetWrap::lengths>("lengths"),
                           InstanceMethod<&TokenDatasetWrap::fingerprints>("fingerprints"),
                           InstanceMethod<&TokenDatasetWrap::tokenDigests>("tokenDigests"),
                           StaticMethod<&TokenDatasetWrap::fromLengths>("fromLengths"),
                       });
  }

  // new TokenDataset(prefixes: string[], name: string); throws SHARD_FORMAT naming the file and the problem, or
  // shards of different dtypes; the error's `prefix` names the pair that failed. (fromLengths hands its dataset over
  // through pending_ instead.)
  explicit TokenDatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenDatasetWrap>(info) {
    Napi::Env env = info.Env();
    if (pending_ != nullptr) {  // made by fromLengths, on this thread, just now
      dataset_ = std::move(*pending_);
      pending_ = nullptr;
      return;
    }
    if (info.Length() < 2 || !info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0 || !info[1].IsString()) {
      Napi::TypeError::New(env, "TokenDataset(prefixes: non-empty string[], name: string)").ThrowAsJavaScriptException();
      return;
    }
    try {
      Napi::Array prefixes = info[0].As<Napi::Array>();
      std::string name = info[1].As<Napi::String>().Utf8Value();
      std::vector<std::shared_ptr<shards::IndexedDataset>> opened;
      for (uint32_t i = 0; i < prefixes.Length(); ++i) {
        std::string error;
        const std::string prefix = prefixes.Get(i).ToString().Utf8Value();
        auto dataset = shards::IndexedDataset::open(prefix, error);
        if (!dataset) {
          Napi::Error failure = codedError(env, error, Status::kShardFormat);
          failure.Set("prefix", prefix);  // which pair of the list failed (TS: ShardFormatError.prefix)
          failure.ThrowAsJavaScriptException();
          return;
        }
        if (!opened.empty() && dataset->dtype() != opened.front()->dtype()) {
          std::string list;
          for (uint32_t j = 0; j <= i; ++j) list += (j ? ", " : "") + prefixes.Get(j).ToString().Utf8Value();
          throwCoded(env, "shards have different dtypes (" + std::string(shards::dtypeName(opened.front()->dtype())) + ", " +
                              shards::dtypeName(dataset->dtype()) + "): " + list, Status::kShardFormat);
          return;
        }
        opened.push_back(std::move(dataset));
      }
      for (uint32_t i = 0; i < prefixes.Length(); ++i) prefixes_.push_back(prefixes.Get(i).ToString().Utf8Value());
      dataset_ = std::make_shared<const shards::TokenDataset>(shards::TokenDataset::fromShards(std::move(name), std::move(opened)));
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: shard open failed: ") + error.what(), Status::kInternal);
    }
  }

  const std::shared_ptr<const shards::TokenDataset>& dataset() const { return dataset_; }

 private:
  // TokenDataset.fromLengths(name, lengths: Int32Array): a dataset of lengths alone, no tokens (plan benchmarks).
  static Napi::Value fromLengths(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      Napi::TypeError::New(env, "TokenDataset.fromLengths(name: string, lengths: Int32Array)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Int32Array typed = info[1].As<Napi::Int32Array>();
    std::vector<int32_t> lengths(typed.Data(), typed.Data() + typed.ElementLength());
    for (int32_t length : lengths) {
      if (length < 0) {
        Napi::RangeError::New(env, "TokenDataset.fromLengths: lengths must be >= 0").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    auto dataset = std::make_shared<const shards::TokenDataset>(shards::TokenDataset::fromLengths(info[0].As<Napi::String>().Utf8Value(), std::move(lengths)));
    // Handed to the constructor through a slot only this file sets (never through an argument JS could forge).
    pending_ = &dataset;
    Napi::Object object = handles(env).tokenDataset.New({});
    pending_ = nullptr;
    return object;
  }

  static inline std::shared_ptr<const shards::TokenDataset>* pending_ = nullptr;

  // info() -> { dtype, documents (Megatron sequences), tokens, shards: { prefix, sequences, documents, tokens }[] }
  Napi::Value info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    const shards::TokenDataset& dataset = *dataset_;
    result.Set("dtype", dataset.shards.empty() ? "int32" : shards::dtypeName(dataset.shards.front()->dtype()));
    result.Set("documents", Napi::Number::New(env, static_cast<double>(dataset.lengths.size())));
    result.Set("tokens", Napi::Number::New(env, static_cast<double>(dataset.tokens)));
    Napi::Array list = Napi::Array::New(env, dataset.shards.size());
    for (size_t i = 0; i < dataset.shards.size(); ++i) {
      Napi::Object shard = Napi::Object::New(env);
      shard.Set("prefix", i < prefixes_.size() ? prefixes_[i] : std::string());
      shard.Set("sequences", Napi::Number::New(env, static_cast<double>(dataset.shards[i]->sequences())));
      shard.Set("documents", Napi::Number::New(env, static_cast<double>(dataset.shards[i]->documents())));
      shard.Set("tokens", Napi::Number::New(env, static_cast<double>(dataset.shards[i]->tokens())));
      list.Set(static_cast<uint32_t>(i), shard);
    }
    result.Set("shards", list);
    return result;
  }

  // document(index: number): a zero-copy typed array over the mapped .bin (the mapping lives as long as any view).
  Napi::Value document(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const shards::TokenDataset& dataset = *dataset_;
    double value = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(value >= 0) || value >= static_cast<double>(dataset.lengths.size()) || dataset.shards.empty()) {
      Napi::RangeError::New(env, "document index out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const uint64_t index = static_cast<uint64_t>(value);
    const size_t shard = dataset.shardOf(index);
    const shards::IndexedDataset& pair = *dataset.shards[shard];
    const uint64_t sequence = index - dataset.shardStarts[shard];
    size_t length = static_cast<size_t>(pair.length(sequence));
    napi_typedarray_type type;
    switch (pair.dtype()) {
      case shards::kUint8: type = napi_uint8_array; break;
      case shards::kInt8: type = napi_int8_array; break;
      case shards::kInt16: type = napi_int16_array; break;
      case shards::kUint16: type = napi_uint16_array; break;
      case shards::kInt32: type = napi_int32_array; break;
      default: type = napi_bigint64_array; break;
    }
    Napi::ArrayBuffer buffer;
    if (length == 0) {
      buffer = Napi::ArrayBuffer::New(env, 0);
    } else {
      auto* keepAlive = new std::shared_ptr<MappedFile>(pair.binFile());
      auto* data = const_cast<uint8_t*>(pair.sequenceData(sequence));
      buffer = Napi::ArrayBuffer::New(
          env, data, length * pair.itemBytes(), [](Napi::Env, void*, std::shared_ptr<MappedFile>* hint) { delete hint; },
          keepAlive);
    }
    napi_value array;
    if (napi_create_typedarray(env, type, length, buffer, 0, &array) != napi_ok) {
      return throwCoded(env, "cannot create a typed array over the shard", Status::kInternal);
    }
    return Napi::Value(env, array);
  }

  // lengths(): Int32Array of every document's length, in order (a copy).
  Napi::Value lengths(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::vector<int32_t>& lengths = dataset_->lengths;
    Napi::Int32Array result = Napi::Int32Array::New(env, lengths.size());
    if (!lengths.empty()) std::memcpy(result.Data(), lengths.data(), lengths.size() * sizeof(int32_t));
    return result;
  }

  // fingerprints(): per shard, the sha256 (hex) of its document lengths as little-endian int32: what schedule cache
  // keys and resume states name a shard's contents by.
  Napi::Value fingerprints(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const shards::TokenDataset& dataset = *dataset_;
    const size_t shardCount = std::max<size_t>(1, dataset.shards.size());
    Napi::Array result = Napi::Array::New(env, shardCount);
    for (size_t shard = 0; shard < shardCount; ++shard) {
      Sha256 sha;
      uint64_t first = dataset.shardStarts[shard], last = dataset.shardStarts[shard + 1];
      if (last > first) sha.update(dataset.lengths.data() + first, static_cast<size_t>(last - first) * sizeof(int32_t));
      result.Set(static_cast<uint32_t>(shard), sha.hex());
    }
    return result;
  }

  // tokenDigests() -> Promise<string[]>: each shard's digest over every token (shards::TokenDigest), on the pool.
  Napi::Value tokenDigests(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct DigestJob : PoolJob<> {
      using PoolJob::PoolJob;
      std::shared_ptr<const shards::TokenDataset> dataset;
      std::vector<std::string> digests;
      void runItem(size_t index, NoWorkerState&) override { digests[index] = dataset->shards[index]->tokenDigest(); }
      void settle(Napi::Env env) override {
        if (rejectIfFailed(env, "tokenDigests")) return;
        Napi::Array result = Napi::Array::New(env, digests.size());
        for (size_t i = 0; i < digests.size(); ++i) result.Set(static_cast<uint32_t>(i), digests[i]);
        deferred.Resolve(result);
      }
    };
    auto job = std::make_shared<DigestJob>(env);
    job->dataset = dataset_;
    job->digests.resize(dataset_->shards.size());
    return job->start(env, job->digests.size(), ThreadPool::shared().size(), "octomix.tokenDigests");
  }

  std::shared_ptr<const shards::TokenDataset> dataset_;
  std::vector<std::string> prefixes_;
};

}  // namespace

namespace {

// lockFile(path) -> number | string: takes an exclusive flock on PATH (created 0644 if absent, never through a
// symlink) and returns its descriptor, held until unlockFile or the process's end (the kernel drops the lock
// however it ends), or the reason it cannot ("busy" when another process holds it).
Napi::Value lockFileBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "lockFile(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  for (int attempt = 0; attempt < 16; ++attempt) {
    int descriptor = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (descriptor < 0) return Napi::String::New(env, systemError(path, "open", errno));
    if (::flock(descriptor, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(descriptor);
      return Napi::String::New(env, error == EWOULDBLOCK ? "busy" : systemError(path, "lock", error));
    }
    // The holder before us unlinks the file before it lets go (unlockFile): a lock on an unlinked file locks
    // nothing, so check the path still names the file we locked, and start again if not.
    struct stat held, named;
    if (::fstat(descriptor, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      return Napi::Number::New(env, descriptor);
    }
    ::close(descriptor);
  }
  return Napi::String::New(env, "cannot lock " + path + ": it keeps being replaced");
}

// unlockFile(descriptor, path): removes the lock file, then lets go of the lock (in that order, see lockFile).
Napi::Value unlockFileBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "unlockFile(descriptor: number, path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ::unlink(info[1].As<Napi::String>().Utf8Value().c_str());
  ::close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

}  // namespace

void registerShards(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, lockFileBinding, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, unlockFileBinding, "unlockFile"));
  exports.Set("ShardWriter", ShardWriterWrap::define(env));
  Napi::Function tokenDataset = TokenDatasetWrap::define(env);
  handles(env).tokenDataset = Napi::Persistent(tokenDataset);
  exports.Set("TokenDataset", tokenDataset);
}

std::shared_ptr<const shards::TokenDataset> unwrapTokenDataset(Napi::Env env, Napi::Value value) {
  TokenDatasetWrap* wrap = unwrapHandle<TokenDatasetWrap>(value, handles(env).tokenDataset);
  return wrap ? wrap->dataset() : nullptr;
}

}  // namespace octomix
