#pragma once
#include <cstddef>
#include <cstdint>

namespace octomix::loader {

// The one table of batch fields. Everything else (the binding, the TS Batch, `octomix serve`, the Python client)
// builds its views from this table as the loader describes it, so a new field is a row here and the code that
// fills it in StreamingLoader::build.
enum class FieldExtent : uint8_t {
  kTokens,          // microBatchSize x seqLength, row-major
  kSegmentBounds,   // segments + 1
  kSegments,        // one per segment
  kRows,            // one per row
};
struct BatchField {
  const char* name;   // as TS and the protocol spell it
  const char* dtype;  // numpy's name
  uint32_t itemBytes;
  FieldExtent extent;
};
enum Field : size_t { kInputIds, kLabels, kPositionIds, kLossMask, kCuSeqlens, kDocumentIds, kSourceIds, kSamples, kFieldCount };
inline constexpr BatchField kBatchFields[kFieldCount] = {
    {"inputIds", "int32", 4, FieldExtent::kTokens},          {"labels", "int32", 4, FieldExtent::kTokens},
    {"positionIds", "int32", 4, FieldExtent::kTokens},       {"lossMask", "uint8", 1, FieldExtent::kTokens},
    {"cuSeqlens", "int32", 4, FieldExtent::kSegmentBounds},  {"documentIds", "int32", 4, FieldExtent::kSegments},
    {"sourceIds", "uint16", 2, FieldExtent::kRows},          {"samples", "float64", 8, FieldExtent::kRows},
};
inline const char* extentName(FieldExtent extent) {
  switch (extent) {
    case FieldExtent::kTokens: return "tokens";
    case FieldExtent::kSegmentBounds: return "segmentBounds";
    case FieldExtent::kSegments: return "segments";
    case FieldExtent::kRows: return "rows";
  }
  return "tokens";
}

struct BatchLayout {
  size_t offset[kFieldCount];  // from the start of a slot
  size_t total;                // bytes per slot (page-aligned)
};

}  // namespace octomix::loader
