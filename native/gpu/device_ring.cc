#include "gpu/device_ring.h"

#include <cstring>
#include <string>

#include "gpu/cuda_driver.h"

namespace octomix::gpu {

namespace {
void check(cuda::Result result, const char* call) {
  if (result != 0) throw std::runtime_error(std::string(call) + " failed: " + cuda::describe(result));
}
}  // namespace

// Makes a context current for a call on a thread octomix does not own (the JS main thread) and puts back the one
// that was current, so other CUDA users of that thread keep theirs.
class ContextScope {
 public:
  explicit ContextScope(cuda::Context context) {
    const cuda::Driver& api = cuda::driver();
    api.contextGetCurrent(&previous_);
    check(api.contextSetCurrent(context), "cuCtxSetCurrent");
  }
  ~ContextScope() { cuda::driver().contextSetCurrent(previous_); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  cuda::Context previous_ = nullptr;
};

class DeviceRingImpl {
 public:
  DeviceRingImpl(int ordinal, const std::vector<uint8_t*>& host, size_t slotBytes) : slotBytes_(slotBytes) {
    cuda::Status status = cuda::probe();
    if (!status.usable) throw DeviceUnavailable("no usable CUDA device: " + status.reason);
    if (ordinal >= static_cast<int>(status.devices.size())) {
      throw DeviceUnavailable("cuda:" + std::to_string(ordinal) + " does not exist (the driver sees " + std::to_string(status.devices.size()) + " device(s))");
    }
    const cuda::Driver& api = cuda::driver();
    try {
      check(api.deviceGet(&device_, ordinal), "cuDeviceGet");
      check(api.primaryContextRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
      retained_ = true;
      ContextScope scope(context_);
      for (uint8_t* slot : host) {
        check(api.memoryHostRegister(slot, slotBytes, cuda::kHostRegisterPortable), "cuMemHostRegister");
        registered_.push_back(slot);
      }
      check(api.memoryAllocate(&base_, slotBytes * host.size()), "cuMemAlloc");
      check(api.streamCreate(&stream_, cuda::kStreamNonBlocking), "cuStreamCreate");
      for (size_t slot = 0; slot < host.size(); ++slot) {
        cuda::Event event = nullptr;
        check(api.eventCreate(&event, cuda::kEventDisableTiming), "cuEventCreate");
        events_.push_back(event);
      }
      host_ = host;
    } catch (const std::exception& failure) {
      release();
      throw DeviceUnavailable(std::string("cuda:") + std::to_string(ordinal) + ": " + failure.what());
    }
  }
  ~DeviceRingImpl() { release(); }
  DeviceRingImpl(const DeviceRingImpl&) = delete;
  DeviceRingImpl& operator=(const DeviceRingImpl&) = delete;

  void bindThread() const { check(cuda::driver().contextSetCurrent(context_), "cuCtxSetCurrent"); }

  void copy(int slot) {
    const cuda::Driver& api = cuda::driver();
    check(api.memoryCopyHostToDeviceAsync(pointer(slot), host_[slot], slotBytes_, stream_), "cuMemcpyHtoDAsync");
    check(api.eventRecord(events_[slot], stream_), "cuEventRecord");
    check(api.eventSynchronize(events_[slot]), "cuEventSynchronize");
  }

  uint64_t pointer(int slot) const { return base_ + static_cast<uint64_t>(slot) * slotBytes_; }

  // A CUDA IPC handle of the whole device ring (another process maps it once with cuIpcOpenMemHandle).
  void ipcHandle(cuda::IpcMemoryHandle* out) const {
    ContextScope scope(context_);
    check(cuda::driver().ipcGetMemoryHandle(out, base_), "cuIpcGetMemHandle");
  }

  void read(int slot, size_t offset, size_t length, uint8_t* out) const {
    ContextScope scope(context_);
    check(cuda::driver().memoryCopyDeviceToHost(out, pointer(slot) + offset, length), "cuMemcpyDtoH");
  }

 private:
  void release() {
    const cuda::Driver& api = cuda::driver();
    if (!api.loaded || !retained_) return;
    cuda::Context previous = nullptr;
    api.contextGetCurrent(&previous);
    api.contextSetCurrent(context_);
    if (stream_ != nullptr) api.streamSynchronize(stream_);
    for (cuda::Event event : events_) api.eventDestroy(event);
    events_.clear();
    if (stream_ != nullptr) api.streamDestroy(stream_);
    stream_ = nullptr;
    if (base_ != 0) api.memoryFree(base_);
    base_ = 0;
    for (void* data : registered_) api.memoryHostUnregister(data);
    registered_.clear();
    // Put back what was current, unless it was this context, which the release below may destroy.
    api.contextSetCurrent(previous == context_ ? nullptr : previous);
    api.primaryContextRelease(device_);
    retained_ = false;
  }

  size_t slotBytes_;
  cuda::Device device_ = 0;
  cuda::Context context_ = nullptr;
  bool retained_ = false;
  cuda::Stream stream_ = nullptr;
  cuda::DevicePointer base_ = 0;
  std::vector<cuda::Event> events_;
  std::vector<void*> registered_;
  std::vector<uint8_t*> host_;
};

DeviceRing::DeviceRing(int ordinal, const std::vector<uint8_t*>& hostSlots, size_t slotBytes)
    : impl_(std::make_unique<DeviceRingImpl>(ordinal, hostSlots, slotBytes)) {}
DeviceRing::~DeviceRing() = default;
void DeviceRing::bindThread() const { impl_->bindThread(); }
void DeviceRing::copy(int slot) { impl_->copy(slot); }
uint64_t DeviceRing::pointer(int slot) const { return impl_->pointer(slot); }
void DeviceRing::ipcHandle(uint8_t out[64]) const {
  cuda::IpcMemoryHandle handle;
  impl_->ipcHandle(&handle);
  std::memcpy(out, handle.reserved, 64);
}
void DeviceRing::read(int slot, size_t offset, size_t length, uint8_t* out) const { impl_->read(slot, offset, length, out); }

}  // namespace octomix::gpu
