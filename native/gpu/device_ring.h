// The device side of the batch ring: pinned host slots and their device twins. Each built batch is copied on a
// dedicated non-blocking stream and its event waited for by the worker that built it, so a batch handed out is
// already on the device and no slot is reused or freed while a copy is in flight. Reaches libcuda only through
// gpu/cuda_driver (dlopen'ed at run time; no CUDA toolkit at build time).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

namespace octomix::gpu {

// The GPU path could not start (no driver, no device, out of device memory...); the message says why.
struct DeviceUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class DeviceRingImpl;

class DeviceRing {
 public:
  // Registers (pins) every host slot of `slotBytes` bytes and allocates their twins on device `ordinal`. The caller
  // keeps the host slots alive until this ring is destroyed (it unregisters them). Throws DeviceUnavailable.
  DeviceRing(int ordinal, const std::vector<uint8_t*>& hostSlots, size_t slotBytes);
  ~DeviceRing();
  DeviceRing(const DeviceRing&) = delete;
  DeviceRing& operator=(const DeviceRing&) = delete;

  // Makes the ring's context current on the calling (worker) thread: the driver API's context is per thread.
  void bindThread() const;
  // Copies host slot `slot` to its twin and waits for the copy's event.
  void copy(int slot);
  uint64_t pointer(int slot) const;
  // A CUDA IPC handle of the whole device ring (another process maps it once with cuIpcOpenMemHandle).
  void ipcHandle(uint8_t out[64]) const;
  // Device bytes of a slot copied back to host memory (tests compare them with the host fields).
  void read(int slot, size_t offset, size_t length, uint8_t* out) const;

 private:
  std::unique_ptr<DeviceRingImpl> impl_;
};

}  // namespace octomix::gpu
