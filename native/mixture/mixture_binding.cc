// N-API face of the mixture code: Megatron's GPTDataset indices (checked against numpy in test/mixture), the
// loader plan build (a promise, on octomix's pool), and the native DataLoader over a plan. Errors carry a code:
// SHARD_FORMAT for a shard that fails to open, PLAN_INVALID for plan bytes that do not parse, INTERNAL otherwise.
#include "mixture/mixture_binding.h"

#include <cstring>
#include <exception>
#include <memory>
#include <optional>

#include "common/napi_helpers.h"
#include "mixture/data_loader.h"
#include "mixture/gpt_indices.h"
#include "mixture/loader_plan.h"
#include "mixture/packing_quality.h"

namespace octomix {

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
    mixture::GptIndices indices = mixture::buildGptIndices(
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
    return throwCoded(env, std::string("octomix: buildGptIndices: ") + error.what(), "MIXTURE_INDEX");
  }
}

// A source as JS describes it: { name, prefixes: string[] } or, for benchmarks of the plan alone,
// { name, lengths: Int32Array }.
struct SourceSpec {
  std::string name;
  std::vector<std::string> prefixes;
  std::vector<int32_t> lengths;
  bool fromLengths = false;
};

bool readSources(Napi::Env env, Napi::Value value, std::vector<SourceSpec>& specs) {
  if (!value.IsArray()) {
    Napi::TypeError::New(env, "sources must be an array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Object object = array.Get(i).As<Napi::Object>();
    SourceSpec spec;
    spec.name = object.Get("name").ToString().Utf8Value();
    Napi::Value lengths = object.Get("lengths");
    if (lengths.IsTypedArray() && lengths.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
      Napi::Int32Array typed = lengths.As<Napi::Int32Array>();
      spec.lengths.assign(typed.Data(), typed.Data() + typed.ElementLength());
      spec.fromLengths = true;
    } else {
      Napi::Array prefixes = object.Get("prefixes").As<Napi::Array>();
      for (uint32_t j = 0; j < prefixes.Length(); ++j) spec.prefixes.push_back(prefixes.Get(j).ToString().Utf8Value());
    }
    specs.push_back(std::move(spec));
  }
  return true;
}

// Opens every shard of every source; on failure returns false with "source NAME: PREFIX.idx: problem".
bool openSources(std::vector<SourceSpec>& specs, std::vector<mixture::SourceDocuments>& sources, std::string& error) {
  for (SourceSpec& spec : specs) {
    if (spec.fromLengths) {
      sources.push_back(mixture::SourceDocuments::fromLengths(spec.name, std::move(spec.lengths)));
      continue;
    }
    std::vector<std::shared_ptr<shards::IndexedDataset>> shards;
    for (const std::string& prefix : spec.prefixes) {
      std::string problem;
      auto dataset = shards::IndexedDataset::open(prefix, problem);
      if (!dataset) {
        error = "source " + spec.name + ": " + problem;
        return false;
      }
      shards.push_back(std::move(dataset));
    }
    sources.push_back(mixture::SourceDocuments::fromShards(spec.name, std::move(shards)));
    // Batches carry document ids as int32 (documentIds), so a source may hold at most 2^31 - 1 documents.
    if (sources.back().lengths.size() > 0x7FFFFFFFull) {
      error = "source " + spec.name + ": " + std::to_string(sources.back().lengths.size()) + " documents is more than the 2^31 - 1 a batch's documentIds can number";
      return false;
    }
  }
  return true;
}

// The jobs over opened sources: open every shard of every source and list them in recipe order.
bool openSourcePointers(std::vector<SourceSpec>& specs, std::vector<mixture::SourceDocuments>& sources,
                        std::vector<const mixture::SourceDocuments*>& pointers, std::string& failure) {
  if (!openSources(specs, sources, failure)) return false;
  for (const auto& source : sources) pointers.push_back(&source);
  return true;
}

// Rejects `deferred` with `failure` (code SHARD_FORMAT) when there is one.
bool rejectWithFailure(Napi::Env env, Napi::Promise::Deferred& deferred, const std::string& failure) {
  if (failure.empty()) return false;
  Napi::Error error = Napi::Error::New(env, failure);
  error.Set("code", Napi::String::New(env, "SHARD_FORMAT"));
  deferred.Reject(error.Value());
  return true;
}

Napi::Object planSummary(Napi::Env env, const mixture::Plan& plan) {
  Napi::Object summary = Napi::Object::New(env);
  Napi::Array stages = Napi::Array::New(env, plan.stages.size());
  for (size_t stage = 0; stage < plan.stages.size(); ++stage) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("steps", Napi::Number::New(env, static_cast<double>(plan.stages[stage].steps)));
    Napi::Array sources = Napi::Array::New(env, plan.sourceCount);
    for (uint32_t source = 0; source < plan.sourceCount; ++source) {
      Napi::Object stats = Napi::Object::New(env);
      stats.Set("samples", Napi::Number::New(env, static_cast<double>(plan.stats[stage][source].samples)));
      stats.Set("tokens", Napi::Number::New(env, static_cast<double>(plan.stats[stage][source].tokens)));
      sources.Set(source, stats);
    }
    entry.Set("sources", sources);
    stages.Set(static_cast<uint32_t>(stage), entry);
  }
  summary.Set("stages", stages);
  // Samples (bestfit) or stream tokens (concat) at the end of each epoch the plan reached, per source.
  Napi::Array epochEnds = Napi::Array::New(env, plan.sourceCount);
  for (uint32_t source = 0; source < plan.sourceCount; ++source) {
    const auto& ends = plan.windowEnds[source];
    uint64_t perEpoch = plan.windowsPerEpoch.empty() ? 0 : plan.windowsPerEpoch[source];
    Napi::Array list = Napi::Array::New(env);
    for (uint64_t end = perEpoch; perEpoch > 0 && end <= ends.size(); end += perEpoch) list.Set(list.Length(), Napi::Number::New(env, static_cast<double>(ends[end - 1])));
    epochEnds.Set(source, list);
  }
  summary.Set("epochEnds", epochEnds);
  // Before each global step and after the last: (cursor, tokens taken in the stage) per source.
  Napi::Float64Array checkpoints = Napi::Float64Array::New(env, plan.checkpoints.size());
  for (size_t i = 0; i < plan.checkpoints.size(); ++i) checkpoints[i] = static_cast<double>(plan.checkpoints[i]);
  summary.Set("checkpoints", checkpoints);
  return summary;
}

class BuildPlanJob : public PoolJob<> {
 public:
  using PoolJob::PoolJob;
  std::vector<SourceSpec> specs;
  mixture::PlanParameters parameters;
  std::vector<mixture::PlanStage> stages;
  std::string failure;
  mixture::Plan plan;
  std::vector<uint8_t> bytes;

  void runItem(size_t, NoWorkerState&) override {
    std::vector<mixture::SourceDocuments> sources;
    std::vector<const mixture::SourceDocuments*> pointers;
    if (!openSourcePointers(specs, sources, pointers, failure)) return;
    try {
      plan = mixture::buildPlan(pointers, parameters, stages);
      bytes = plan.serialize();
    } catch (const std::exception& error) {
      failure = error.what();
    }
  }
  void settle(Napi::Env env) override {
    if (rejectIfFailed(env, "buildLoaderPlan")) return;
    if (rejectWithFailure(env, deferred, failure)) return;
    Napi::Object result = planSummary(env, plan);
    result.Set("plan", Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    deferred.Resolve(result);
  }
};

bool readParameters(Napi::Env env, Napi::Object object, mixture::PlanParameters& parameters) {
  parameters.seed = static_cast<uint64_t>(object.Get("seed").ToNumber().Int64Value());
  parameters.seqLength = object.Get("seqLength").ToNumber().Uint32Value();
  parameters.globalBatchSize = static_cast<uint64_t>(object.Get("globalBatchSize").ToNumber().Int64Value());
  parameters.packing = object.Get("packing").ToString().Utf8Value() == "concat" ? mixture::Packing::kConcat : mixture::Packing::kBestFit;
  parameters.windowDocuments = object.Get("windowDocuments").ToNumber().Uint32Value();
  if (object.Get("spreadWindows").IsNumber()) parameters.spreadWindows = object.Get("spreadWindows").ToNumber().Uint32Value();
  if (parameters.seqLength == 0 || parameters.globalBatchSize == 0 || parameters.windowDocuments == 0 || parameters.spreadWindows == 0 ||
      parameters.spreadWindows > mixture::LongDocumentCache::kSlots) {
    Napi::RangeError::New(env, "seqLength, globalBatchSize, windowDocuments and spreadWindows must be positive (spreadWindows at most 32)").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// buildLoaderPlan(sources, parameters, stages: { steps, shares: number[] }[]) -> Promise<{ plan: Buffer, stages, ... }>
Napi::Value buildLoaderPlanBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsArray()) {
    Napi::TypeError::New(env, "buildLoaderPlan(sources, parameters, stages)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto job = std::make_shared<BuildPlanJob>(env);
  if (!readSources(env, info[0], job->specs) || !readParameters(env, info[1].As<Napi::Object>(), job->parameters)) return env.Undefined();
  Napi::Array stages = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < stages.Length(); ++i) {
    Napi::Object object = stages.Get(i).As<Napi::Object>();
    mixture::PlanStage stage;
    stage.steps = static_cast<uint64_t>(object.Get("steps").ToNumber().Int64Value());
    Napi::Array shares = object.Get("shares").As<Napi::Array>();
    for (uint32_t j = 0; j < shares.Length(); ++j) stage.shares.push_back(shares.Get(j).ToNumber().DoubleValue());
    if (stage.shares.size() != job->specs.size()) {
      Napi::RangeError::New(env, "each stage needs one share per source").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    job->stages.push_back(std::move(stage));
  }
  return job->start(env, 1, 1, "octomix.buildLoaderPlan");
}

bool parsePlan(Napi::Env env, Napi::Value value, mixture::Plan& plan) {
  if (!value.IsBuffer() && !value.IsTypedArray()) {
    Napi::TypeError::New(env, "plan must be a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  std::string error;
  if (!mixture::Plan::deserialize(bytes.Data(), bytes.ByteLength(), plan, error)) {
    throwCoded(env, error, "PLAN_INVALID");
    return false;
  }
  return true;
}


class PackingQualityJob : public PoolJob<> {
 public:
  using PoolJob::PoolJob;
  std::vector<SourceSpec> specs;
  mixture::Plan plan;
  uint64_t maxSteps = 0;
  std::string failure;
  std::vector<mixture::StageQuality> quality;

  void runItem(size_t, NoWorkerState&) override {
    std::vector<mixture::SourceDocuments> sources;
    std::vector<const mixture::SourceDocuments*> pointers;
    if (!openSourcePointers(specs, sources, pointers, failure)) return;
    try {
      quality = mixture::measurePackingQuality(plan, pointers, maxSteps);
    } catch (const std::exception& error) {
      failure = error.what();
    }
  }
  void settle(Napi::Env env) override {
    if (rejectIfFailed(env, "measurePackingQuality")) return;
    if (rejectWithFailure(env, deferred, failure)) return;
    Napi::Array stages = Napi::Array::New(env, quality.size());
    for (size_t i = 0; i < quality.size(); ++i) {
      const mixture::StageQuality& stage = quality[i];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("steps", Napi::Number::New(env, static_cast<double>(stage.steps)));
      entry.Set("rows", Napi::Number::New(env, static_cast<double>(stage.rows)));
      entry.Set("neighbourPairs", Napi::Number::New(env, static_cast<double>(stage.neighbourPairs)));
      entry.Set("sameDocumentPairs", Napi::Number::New(env, static_cast<double>(stage.sameDocumentPairs)));
      entry.Set("sameDocumentNeighbours", Napi::Number::New(env, stage.sameDocumentNeighbours));
      entry.Set("uniformNeighbours", Napi::Number::New(env, stage.uniformNeighbours));
      Napi::Array sources = Napi::Array::New(env, stage.sources.size());
      for (size_t j = 0; j < stage.sources.size(); ++j) {
        const mixture::SourceQuality& source = stage.sources[j];
        Napi::Object object = Napi::Object::New(env);
        object.Set("documentStarts", Napi::Number::New(env, static_cast<double>(source.documentStarts)));
        object.Set("firstAppearanceLengthCorrelation", Napi::Number::New(env, source.firstAppearanceLengthCorrelation));
        object.Set("earlyDocuments", Napi::Number::New(env, static_cast<double>(source.earlyDocuments)));
        object.Set("earlyMeanLength", Napi::Number::New(env, source.earlyMeanLength));
        object.Set("sourceMeanLength", Napi::Number::New(env, source.sourceMeanLength));
        sources.Set(static_cast<uint32_t>(j), object);
      }
      entry.Set("sources", sources);
      stages.Set(static_cast<uint32_t>(i), entry);
    }
    deferred.Resolve(stages);
  }
};

// measurePackingQuality(plan: Uint8Array, sources, maxStepsPerStage) -> Promise<StageQuality[]>
Napi::Value measurePackingQualityBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "measurePackingQuality(plan, sources, maxStepsPerStage)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto job = std::make_shared<PackingQualityJob>(env);
  if (!parsePlan(env, info[0], job->plan) || !readSources(env, info[1], job->specs)) return env.Undefined();
  const double maxSteps = info[2].As<Napi::Number>().DoubleValue();
  if (!(maxSteps >= 1) || job->specs.size() != job->plan.sourceCount) {
    Napi::RangeError::New(env, "measurePackingQuality: maxStepsPerStage must be >= 1 and sources must match the plan").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  job->maxSteps = maxSteps > 1e15 ? uint64_t{1} << 50 : static_cast<uint64_t>(maxSteps);
  return job->start(env, 1, 1, "octomix.measurePackingQuality");
}

// readLoaderPlan(plan: Uint8Array, documentsPerSource?: number[]) -> the summary buildLoaderPlan gives, for a cached
// plan; with document counts, also checks the plan was built for sources of those sizes (PLAN_INVALID if not).
Napi::Value readLoaderPlanBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  mixture::Plan plan;
  if (info.Length() < 1 || !parsePlan(env, info[0], plan)) return env.Undefined();
  if (info.Length() > 1 && info[1].IsArray()) {
    Napi::Array counts = info[1].As<Napi::Array>();
    std::vector<uint64_t> documents;
    for (uint32_t i = 0; i < counts.Length(); ++i) documents.push_back(static_cast<uint64_t>(counts.Get(i).ToNumber().DoubleValue()));
    std::string mismatch;
    if (!plan.matches(documents, mismatch)) return throwCoded(env, mismatch, "PLAN_INVALID");
  }
  return planSummary(env, plan);
}

// new DataLoader(plan: Uint8Array, sources: { name, prefixes }[], options) — the ring of prefetched micro-batches.
class DataLoaderWrap : public Napi::ObjectWrap<DataLoaderWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "DataLoader",
                       {
                           InstanceMethod<&DataLoaderWrap::next>("next"),
                           InstanceMethod<&DataLoaderWrap::release>("release"),
                           InstanceMethod<&DataLoaderWrap::close>("close"),
                           InstanceMethod<&DataLoaderWrap::describe>("describe"),
                           InstanceMethod<&DataLoaderWrap::windowChunks>("windowChunks"),
                           InstanceMethod<&DataLoaderWrap::readDevice>("readDevice"),
                           InstanceMethod<&DataLoaderWrap::ipcHandle>("ipcHandle"),
                       });
  }

  explicit DataLoaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataLoaderWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[2].IsObject()) {
      Napi::TypeError::New(env, "DataLoader(plan, sources, options)").ThrowAsJavaScriptException();
      return;
    }
    mixture::Plan plan;
    if (!parsePlan(env, info[0], plan)) return;
    std::vector<SourceSpec> specs;
    if (!readSources(env, info[1], specs)) return;
    for (const SourceSpec& spec : specs) {
      if (spec.fromLengths) {  // lengths alone can plan, but a loader reads tokens
        Napi::TypeError::New(env, "DataLoader sources need shard prefixes (lengths alone are for buildLoaderPlan)").ThrowAsJavaScriptException();
        return;
      }
    }
    Napi::Object object = info[2].As<Napi::Object>();
    mixture::LoaderOptions options;
    options.rank = object.Get("rank").ToNumber().Uint32Value();
    options.worldSize = object.Get("worldSize").ToNumber().Uint32Value();
    options.microBatchSize = object.Get("microBatchSize").ToNumber().Uint32Value();
    options.prefetch = object.Get("prefetch").ToNumber().Uint32Value();
    options.threads = object.Get("threads").ToNumber().Uint32Value();
    options.startMicroBatch = static_cast<uint64_t>(object.Get("startMicroBatch").ToNumber().Int64Value());
    options.ignoreIndex = object.Get("ignoreIndex").ToNumber().Int32Value();
    options.padTokenId = object.Get("padTokenId").ToNumber().Int32Value();
    options.maskEosInput = object.Get("maskEosInput").ToBoolean().Value();
    options.eosTokenId = object.Get("eosTokenId").ToNumber().Int64Value();
    if (object.Get("deviceOrdinal").IsNumber()) options.deviceOrdinal = object.Get("deviceOrdinal").ToNumber().Int32Value();
    if (object.Get("sharedMemoryPath").IsString()) options.sharedMemoryPath = object.Get("sharedMemoryPath").ToString().Utf8Value();
    if (options.worldSize == 0 || options.microBatchSize == 0 || options.prefetch == 0 || options.rank >= options.worldSize ||
        plan.parameters.globalBatchSize % (uint64_t{options.worldSize} * options.microBatchSize) != 0 || specs.size() != plan.sourceCount) {
      Napi::RangeError::New(env, "DataLoader options do not fit the plan").ThrowAsJavaScriptException();
      return;
    }
    try {
      std::vector<mixture::SourceDocuments> sources;
      std::string error;
      if (!openSources(specs, sources, error)) {
        throwCoded(env, error, "SHARD_FORMAT");
        return;
      }
      loader_ = std::make_unique<mixture::StreamingLoader>(std::move(plan), std::move(sources), options);
    } catch (const mixture::DeviceUnavailable& error) {
      throwCoded(env, error.what(), "DEVICE_UNAVAILABLE");
      return;
    } catch (const std::exception& error) {
      throwCoded(env, std::string("octomix: DataLoader: ") + error.what(), options.sharedMemoryPath.empty() ? "INTERNAL" : "LOADER_SHARED_MEMORY");
      return;
    }
    held_.resize(options.prefetch);
    ready_ = Napi::ThreadSafeFunction::New(env, Napi::Function(), "octomix.DataLoader", 0, 1);
    ready_.Unref(env);
    // Runs before the thread-safe function's own teardown (hooks run in reverse order of registration), so no
    // worker calls into a finalized function when the environment exits with the loader still open.
    napi_add_env_cleanup_hook(env, &DataLoaderWrap::environmentTeardown, this);
    hookEnv_ = env;
    started_ = true;
    Napi::ThreadSafeFunction ready = ready_;
    // Calls queued by a worker may run after this object is collected; they hold only a weak token.
    std::weak_ptr<DataLoaderWrap*> token = alive_;
    try {
      loader_->start([ready, token]() mutable {
        ready.NonBlockingCall([token](Napi::Env env, Napi::Function) {
          auto self = token.lock();
          if (env == nullptr || !self) return;
          Napi::HandleScope scope(env);
          (*self)->deliver(env);
        });
      });
    } catch (const std::exception& error) {  // std::thread could not start: join what did, then report
      shutDown();
      loader_.reset();
      throwCoded(env, std::string("octomix: DataLoader: cannot start prefetch threads: ") + error.what(), "INTERNAL");
    }
  }

  ~DataLoaderWrap() override {
    if (hookEnv_ != nullptr) napi_remove_env_cleanup_hook(hookEnv_, &DataLoaderWrap::environmentTeardown, this);
    alive_.reset();
    shutDown();
  }

  static void environmentTeardown(void* data) {
    auto* self = static_cast<DataLoaderWrap*>(data);
    self->hookEnv_ = nullptr;
    self->shutDown();
  }

  // Joins the workers and releases the thread-safe function; no JS is touched (safe in finalizers and teardown).
  void shutDown() {
    if (loader_) loader_->stop();
    if (!closed_ && started_) ready_.Release();
    closed_ = true;
  }

 private:
  // Called on the main thread by a worker (through ready_) when the batch next() waits for is ready or a worker
  // failed.
  void deliver(Napi::Env env) {
    if (!pending_ || !loader_) return;
    settle(env, *pending_);
  }

  // Settles `deferred` with the next batch, the end (null) or an error; returns false, leaving it pending, while
  // the batch is still being built (the loader then marks that JS waits, under its lock, so no wake-up is lost).
  bool settle(Napi::Env env, Napi::Promise::Deferred deferred) {
    mixture::BatchInfo info;
    int slot = loader_->takeReady(info);
    if (slot == -1) return false;
    if (pending_) {
      pending_.reset();
      ready_.Unref(env);
    }
    if (slot == -2) {
      deferred.Resolve(env.Null());
    } else if (slot == -3) {
      Napi::Error error = Napi::Error::New(env, "every prefetch buffer is held by a batch that was not released: call batch.release() when done with a batch, or raise prefetch");
      error.Set("code", Napi::String::New(env, "LOADER_BUFFERS_HELD"));
      deferred.Reject(error.Value());
    } else if (slot == -4) {
      Napi::Error error = Napi::Error::New(env, "octomix DataLoader: " + loader_->error());
      error.Set("code", Napi::String::New(env, "LOADER_FAILED"));
      deferred.Reject(error.Value());
    } else {
      const auto& memory = loader_->memory(slot);
      auto* keepAlive = new std::shared_ptr<mixture::BatchMemory>(memory);
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env, memory->data, memory->bytes,
          [](Napi::Env, void*, std::shared_ptr<mixture::BatchMemory>* hint) { delete hint; }, keepAlive);
      held_[slot] = Napi::Persistent(buffer);
      Napi::Object result = Napi::Object::New(env);
      result.Set("slot", Napi::Number::New(env, slot));
      result.Set("buffer", buffer);
      result.Set("index", Napi::Number::New(env, static_cast<double>(info.index)));
      result.Set("step", Napi::Number::New(env, static_cast<double>(info.step)));
      result.Set("microBatch", Napi::Number::New(env, info.microBatch));
      result.Set("stage", Napi::Number::New(env, info.stage));
      result.Set("segments", Napi::Number::New(env, info.segments));
      result.Set("maxSeqlen", Napi::Number::New(env, info.maxSeqlen));
      result.Set("lossTokens", Napi::Number::New(env, static_cast<double>(info.realTokens)));
      if (uint64_t device = loader_->devicePointer(slot)) result.Set("devicePointer", Napi::BigInt::New(env, device));
      deferred.Resolve(result);
    }
    return true;
  }

  // next() -> Promise<batch | null>
  Napi::Value next(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    if (closed_) {
      deferred.Resolve(env.Null());
    } else if (pending_) {
      Napi::Error error = Napi::Error::New(env, "next() was called while a previous next() is still pending");
      error.Set("code", Napi::String::New(env, "LOADER_BUSY"));
      deferred.Reject(error.Value());
    } else if (!settle(env, deferred)) {
      pending_ = deferred;
      ready_.Ref(env);  // keep the process alive while JS awaits a worker
    }
    return deferred.Promise();
  }

  // release(slot): detaches the batch's ArrayBuffer (every view of it reads as empty from now on) and hands the
  // buffer back to the workers.
  Napi::Value release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "release(slot: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int slot = info[0].As<Napi::Number>().Int32Value();
    if (slot < 0 || static_cast<size_t>(slot) >= held_.size() || held_[slot].IsEmpty()) return env.Undefined();
    held_[slot].Value().Detach();
    held_[slot].Reset();
    if (loader_) loader_->release(slot);
    return env.Undefined();
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_ || !loader_) return env.Undefined();
    loader_->stop();
    for (auto& buffer : held_) {
      if (!buffer.IsEmpty()) {
        buffer.Value().Detach();
        buffer.Reset();
      }
    }
    if (pending_) {
      Napi::Promise::Deferred deferred = *pending_;
      pending_.reset();
      ready_.Unref(env);
      deferred.Resolve(env.Null());
    }
    ready_.Release();
    closed_ = true;
    loader_.reset();
    return env.Undefined();
  }

  Napi::Value describe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    if (!loader_) return result;
    const mixture::BatchLayout& layout = loader_->layout();
    result.Set("totalMicroBatches", Napi::Number::New(env, static_cast<double>(loader_->totalMicroBatches())));
    result.Set("microBatchesPerStep", Napi::Number::New(env, static_cast<double>(loader_->microBatchesPerStep())));
    // The batch field table (data_loader.h) with this loader's offsets: what every client builds its views from.
    Napi::Object offsets = Napi::Object::New(env);
    Napi::Array fields = Napi::Array::New(env, mixture::kFieldCount);
    for (size_t field = 0; field < mixture::kFieldCount; ++field) {
      const mixture::BatchField& spec = mixture::kBatchFields[field];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", spec.name);
      entry.Set("dtype", spec.dtype);
      entry.Set("offset", Napi::Number::New(env, static_cast<double>(layout.offset[field])));
      entry.Set("extent", mixture::extentName(spec.extent));
      fields.Set(static_cast<uint32_t>(field), entry);
    }
    offsets.Set("fields", fields);
    offsets.Set("total", Napi::Number::New(env, static_cast<double>(layout.total)));
    result.Set("layout", offsets);
    if (loader_->sharedRing()) {
      Napi::Object shared = Napi::Object::New(env);
      shared.Set("path", loader_->sharedRing()->path);
      shared.Set("bytes", Napi::Number::New(env, static_cast<double>(loader_->sharedRing()->bytes)));
      result.Set("sharedMemory", shared);
    }
    return result;
  }

  // ipcHandle() -> Buffer(64) | undefined: the device ring's CUDA IPC handle, for octomix serve.
  Napi::Value ipcHandle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    uint8_t handle[64];
    try {
      if (!loader_->deviceIpcHandle(handle)) return env.Undefined();
    } catch (const std::exception& error) {
      return throwCoded(env, error.what(), "DEVICE_UNAVAILABLE");
    }
    return Napi::Buffer<uint8_t>::Copy(env, handle, 64);
  }

  // readDevice(slot, offset, length) -> Uint8Array: device bytes of a ring slot copied back (tests on a GPU).
  Napi::Value readDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    int slot = info[0].ToNumber().Int32Value();
    int64_t offsetValue = info[1].ToNumber().Int64Value();
    int64_t lengthValue = info[2].ToNumber().Int64Value();
    const int64_t total = static_cast<int64_t>(loader_->layout().total);
    // Only a held slot: its copy is complete and no worker refills it while it is read back.
    if (slot < 0 || static_cast<size_t>(slot) >= held_.size() || held_[slot].IsEmpty() || offsetValue < 0 || lengthValue < 0 ||
        offsetValue > total || lengthValue > total - offsetValue) {
      Napi::RangeError::New(env, "readDevice: the slot is not held, or the range is out of bounds").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    size_t offset = static_cast<size_t>(offsetValue);
    size_t length = static_cast<size_t>(lengthValue);
    Napi::Uint8Array out = Napi::Uint8Array::New(env, length);
    try {
      loader_->readDevice(slot, offset, length, out.Data());
    } catch (const std::exception& error) {
      return throwCoded(env, error.what(), "DEVICE_UNAVAILABLE");
    }
    return out;
  }

  // windowChunks(source, window) -> { chunks: Float64Array of (document, offset, length), rowStarts: Float64Array }:
  // one packing window as packed from scratch (tests): bestfit rows in stream order (rowStarts index chunks), concat
  // pieces in stream order (rowStarts empty).
  Napi::Value windowChunks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!loader_) return env.Undefined();
    uint32_t sourceIndex = info[0].ToNumber().Uint32Value();
    double windowValue = info[1].ToNumber().DoubleValue();
    if (sourceIndex >= loader_->plan().sourceCount || !(windowValue >= 0) || windowValue > 9007199254740991.0) {
      Napi::RangeError::New(env, "windowChunks: source index or window out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const mixture::SourceDocuments& source = loader_->source(sourceIndex);
    mixture::SourceStream stream(&source, loader_->plan().parameters, sourceIndex);
    mixture::PackedWindow window;
    stream.windowChunks(static_cast<uint64_t>(windowValue), window);
    Napi::Float64Array chunks = Napi::Float64Array::New(env, window.chunks.size() * 3);
    for (size_t i = 0; i < window.chunks.size(); ++i) {
      chunks[3 * i] = static_cast<double>(window.chunks[i].document);
      chunks[3 * i + 1] = window.chunks[i].offset;
      chunks[3 * i + 2] = window.chunks[i].length;
    }
    const bool bestfit = loader_->plan().parameters.packing == mixture::Packing::kBestFit;
    Napi::Float64Array rowStarts = Napi::Float64Array::New(env, bestfit ? window.binStart.size() : 0);
    for (size_t i = 0; bestfit && i < window.binStart.size(); ++i) rowStarts[i] = window.binStart[i];
    Napi::Object result = Napi::Object::New(env);
    result.Set("chunks", chunks);
    result.Set("rowStarts", rowStarts);
    return result;
  }

  std::unique_ptr<mixture::StreamingLoader> loader_;
  Napi::ThreadSafeFunction ready_;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> held_;
  std::optional<Napi::Promise::Deferred> pending_;
  bool closed_ = false;
  bool started_ = false;
  napi_env hookEnv_ = nullptr;
  std::shared_ptr<DataLoaderWrap*> alive_ = std::make_shared<DataLoaderWrap*>(this);
};

// probeRing(path) -> 'stale' | 'live' | 'foreign' | 'gone': whether a server still holds a ring file's lock.
Napi::Value probeRingBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "probeRing(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  switch (mixture::probeRing(info[0].As<Napi::String>().Utf8Value())) {
    case mixture::RingProbe::kStale: return Napi::String::New(env, "stale");
    case mixture::RingProbe::kLive: return Napi::String::New(env, "live");
    case mixture::RingProbe::kForeign: return Napi::String::New(env, "foreign");
    case mixture::RingProbe::kGone: return Napi::String::New(env, "gone");
  }
  return env.Undefined();
}

}  // namespace

void registerMixture(Napi::Env env, Napi::Object exports) {
  exports.Set("probeRing", Napi::Function::New(env, probeRingBinding, "probeRing"));
  exports.Set("buildGptIndices", Napi::Function::New(env, buildGptIndicesBinding, "buildGptIndices"));
  exports.Set("buildLoaderPlan", Napi::Function::New(env, buildLoaderPlanBinding, "buildLoaderPlan"));
  exports.Set("readLoaderPlan", Napi::Function::New(env, readLoaderPlanBinding, "readLoaderPlan"));
  exports.Set("measurePackingQuality", Napi::Function::New(env, measurePackingQualityBinding, "measurePackingQuality"));
  exports.Set("DataLoader", DataLoaderWrap::define(env));
}

}  // namespace octomix
