// N-API face of the mixture: the Schedule class (built from token datasets on octomix's pool, or read from cached
// bytes and checked against them), its summary and file bytes, and its packing-quality figures. Token datasets
// arrive as handles (shards/shards_binding.h): the shards a recipe names are opened once, in TS, and every job here
// works on those same objects. Errors carry a code from common/status.h.
#include "mixture/mixture_binding.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>

#include "common/handles.h"
#include "common/napi_helpers.h"
#include "mixture/packing_quality.h"
#include "mixture/schedule.h"
#include "shards/shards_binding.h"

namespace octomix {

namespace {

using DatasetList = std::vector<std::shared_ptr<const shards::TokenDataset>>;

// An array of native TokenDataset handles; false after throwing.
bool readDatasets(Napi::Env env, Napi::Value value, DatasetList& datasets) {
  if (!value.IsArray()) {
    Napi::TypeError::New(env, "datasets must be an array of native TokenDataset objects").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    std::shared_ptr<const shards::TokenDataset> dataset = unwrapTokenDataset(env, array.Get(i));
    if (!dataset) {
      Napi::TypeError::New(env, "datasets[" + std::to_string(i) + "] is not a native TokenDataset").ThrowAsJavaScriptException();
      return false;
    }
    // Batches carry document ids as int32 (documentIds), so a source may hold at most 2^31 - 1 documents.
    if (dataset->lengths.size() > 0x7FFFFFFFull) {
      throwCoded(env, "source " + dataset->name + ": " + std::to_string(dataset->lengths.size()) + " documents is more than the 2^31 - 1 a batch's documentIds can number", Status::kShardFormat);
      return false;
    }
    datasets.push_back(std::move(dataset));
  }
  return true;
}

// Runs a job's work on a pool thread: what the work refuses (a std::exception: a source without tokens, a stage
// without a positive share) is kept in `failure` for settle() to reject with SCHEDULE_INVALID; an allocation
// failure goes on to PoolJob, which rejects it as INTERNAL.
template <typename Work>
void keepRefusal(std::string& failure, Work&& work) {
  try {
    work();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& error) {
    failure = error.what();
  }
}

std::vector<const shards::TokenDataset*> pointers(const DatasetList& datasets) {
  std::vector<const shards::TokenDataset*> list;
  for (const auto& dataset : datasets) list.push_back(dataset.get());
  return list;
}

Napi::Object scheduleSummary(Napi::Env env, const mixture::Schedule& plan) {
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

bool readParameters(Napi::Env env, Napi::Object object, mixture::ScheduleParameters& parameters) {
  parameters.seed = static_cast<uint64_t>(object.Get("seed").ToNumber().Int64Value());
  parameters.seqLength = object.Get("seqLength").ToNumber().Uint32Value();
  parameters.globalBatchSize = static_cast<uint64_t>(object.Get("globalBatchSize").ToNumber().Int64Value());
  parameters.packing = object.Get("packing").ToString().Utf8Value() == "concat" ? packing::Packing::kConcat : packing::Packing::kBestFit;
  parameters.windowDocuments = object.Get("windowDocuments").ToNumber().Uint32Value();
  if (object.Get("spreadWindows").IsNumber()) parameters.spreadWindows = object.Get("spreadWindows").ToNumber().Uint32Value();
  if (parameters.seqLength == 0 || parameters.globalBatchSize == 0 || parameters.windowDocuments == 0 || parameters.spreadWindows == 0 ||
      parameters.spreadWindows > packing::LongDocumentCache::kSlots) {
    Napi::RangeError::New(env, "seqLength, globalBatchSize, windowDocuments and spreadWindows must be positive (spreadWindows at most 32)").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

class ScheduleWrap : public Napi::ObjectWrap<ScheduleWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Schedule",
                       {
                           InstanceMethod<&ScheduleWrap::summary>("summary"),
                           InstanceMethod<&ScheduleWrap::bytes>("bytes"),
                           InstanceMethod<&ScheduleWrap::measureQuality>("measureQuality"),
                           StaticMethod<&ScheduleWrap::build>("build"),
                           StaticMethod<&ScheduleWrap::read>("read"),
                       });
  }

  // Constructed only by build() and read(), which hand the schedule over through a slot only this file sets.
  explicit ScheduleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScheduleWrap>(info) {
    if (pending_ == nullptr) {
      Napi::TypeError::New(info.Env(), "Schedule objects come from Schedule.build or Schedule.read").ThrowAsJavaScriptException();
      return;
    }
    schedule_ = std::move(*pending_);
    pending_ = nullptr;
  }

  const std::shared_ptr<const mixture::Schedule>& schedule() const { return schedule_; }

  static Napi::Object wrap(Napi::Env env, std::shared_ptr<const mixture::Schedule> schedule) {
    pending_ = &schedule;
    Napi::Object object = handles(env).schedule.New({});
    pending_ = nullptr;
    return object;
  }

 private:
  class BuildJob : public PoolJob<> {
   public:
    using PoolJob::PoolJob;
    DatasetList datasets;
    mixture::ScheduleParameters parameters;
    std::vector<mixture::ScheduleStage> stages;
    std::string failure;
    std::shared_ptr<const mixture::Schedule> schedule;

    void runItem(size_t, NoWorkerState&) override {
      keepRefusal(failure, [&] { schedule = std::make_shared<const mixture::Schedule>(mixture::buildSchedule(pointers(datasets), parameters, stages)); });
    }
    void settle(Napi::Env env) override {
      if (rejectIfFailed(env, "Schedule.build")) return;
      // What the build refuses (a source without tokens, a stage without a positive share) is a schedule that
      // cannot be made from these inputs: the message names the source or the stage.
      if (!failure.empty()) return deferred.Reject(codedError(env, "the loader plan cannot be built: " + failure, Status::kScheduleInvalid).Value());
      deferred.Resolve(wrap(env, std::move(schedule)));
    }
  };

  // Schedule.build(datasets, parameters, stages: { steps, shares: number[] }[]) -> Promise<Schedule>
  static Napi::Value build(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[1].IsObject() || !info[2].IsArray()) {
      Napi::TypeError::New(env, "Schedule.build(datasets, parameters, stages)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto job = std::make_shared<BuildJob>(env);
    if (!readDatasets(env, info[0], job->datasets) || !readParameters(env, info[1].As<Napi::Object>(), job->parameters)) return env.Undefined();
    Napi::Array stages = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < stages.Length(); ++i) {
      Napi::Object object = stages.Get(i).As<Napi::Object>();
      mixture::ScheduleStage stage;
      stage.steps = static_cast<uint64_t>(object.Get("steps").ToNumber().Int64Value());
      Napi::Array shares = object.Get("shares").As<Napi::Array>();
      for (uint32_t j = 0; j < shares.Length(); ++j) stage.shares.push_back(shares.Get(j).ToNumber().DoubleValue());
      if (stage.shares.size() != job->datasets.size()) {
        Napi::RangeError::New(env, "each stage needs one share per dataset").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      job->stages.push_back(std::move(stage));
    }
    return job->start(env, 1, 1, "octomix.Schedule.build");
  }

  // Schedule.read(bytes: Uint8Array, datasets) -> Schedule: cached bytes, checked (checksum, every table a replay
  // relies on, and that they were built for datasets of these sizes); SCHEDULE_INVALID otherwise.
  static Napi::Value read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || (!info[0].IsBuffer() && !info[0].IsTypedArray())) {
      Napi::TypeError::New(env, "Schedule.read(bytes: Uint8Array, datasets)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    DatasetList datasets;
    if (!readDatasets(env, info[1], datasets)) return env.Undefined();
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    auto schedule = std::make_shared<mixture::Schedule>();
    std::string error;
    if (!mixture::Schedule::deserialize(bytes.Data(), bytes.ByteLength(), *schedule, error)) return throwCoded(env, error, Status::kScheduleInvalid);
    std::vector<uint64_t> documents;
    for (const auto& dataset : datasets) documents.push_back(dataset->lengths.size());
    if (!schedule->matches(documents, error)) return throwCoded(env, error, Status::kScheduleInvalid);
    return wrap(env, std::move(schedule));
  }

  // summary() -> { stages: { steps, sources: { samples, tokens }[] }[], epochEnds: number[][], checkpoints }
  Napi::Value summary(const Napi::CallbackInfo& info) { return scheduleSummary(info.Env(), *schedule_); }

  // bytes() -> Buffer: the schedule's file (what the cache holds).
  Napi::Value bytes(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> bytes = schedule_->serialize();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), bytes.data(), bytes.size());
  }

  class QualityJob : public PoolJob<> {
   public:
    using PoolJob::PoolJob;
    std::shared_ptr<const mixture::Schedule> schedule;
    DatasetList datasets;
    uint64_t maxSteps = 0;
    std::string failure;
    std::vector<mixture::StageQuality> quality;

    void runItem(size_t, NoWorkerState&) override {
      keepRefusal(failure, [&] { quality = mixture::measurePackingQuality(*schedule, pointers(datasets), maxSteps); });
    }
    void settle(Napi::Env env) override {
      if (rejectIfFailed(env, "measureQuality")) return;
      if (!failure.empty()) return deferred.Reject(codedError(env, "the packing quality cannot be measured: " + failure, Status::kScheduleInvalid).Value());
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

  // measureQuality(datasets, maxStepsPerStage) -> Promise<StageQuality[]>
  Napi::Value measureQuality(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "measureQuality(datasets, maxStepsPerStage)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto job = std::make_shared<QualityJob>(env);
    job->schedule = schedule_;
    if (!readDatasets(env, info[0], job->datasets)) return env.Undefined();
    const double maxSteps = info[1].As<Napi::Number>().DoubleValue();
    if (!(maxSteps >= 1) || job->datasets.size() != schedule_->sourceCount) {
      Napi::RangeError::New(env, "measureQuality: maxStepsPerStage must be >= 1 and datasets must match the schedule").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    job->maxSteps = maxSteps > 1e15 ? uint64_t{1} << 50 : static_cast<uint64_t>(maxSteps);
    return job->start(env, 1, 1, "octomix.Schedule.measureQuality");
  }

  std::shared_ptr<const mixture::Schedule> schedule_;
  static inline std::shared_ptr<const mixture::Schedule>* pending_ = nullptr;
};

}  // namespace

std::shared_ptr<const mixture::Schedule> unwrapSchedule(Napi::Env env, Napi::Value value) {
  ScheduleWrap* wrap = unwrapHandle<ScheduleWrap>(value, handles(env).schedule);
  return wrap ? wrap->schedule() : nullptr;
}

void registerMixture(Napi::Env env, Napi::Object exports) {
  Napi::Function schedule = ScheduleWrap::define(env);
  handles(env).schedule = Napi::Persistent(schedule);
  exports.Set("Schedule", schedule);
}

}  // namespace octomix
