// RAII wrappers for file descriptors and read-only memory maps, with errors as values (errno text and path), so
// native code never leaks a descriptor or a mapping on an early return and never throws across N-API.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace octomix {

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes and reports a close error (NFS and full disks report write errors at close).
  bool close(std::string& error);

 private:
  int fd_ = -1;
};

// A whole file mapped for reading. An empty file is valid (no mapping; data() is nullptr). With copyOnWrite the
// pages are private and writable: JS typed arrays over them are writable, and a write must neither crash the
// process (as it would on a read-only page) nor reach the file.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path, std::string& error, bool copyOnWrite = false);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// "path: message" with strerror(errno_value).
std::string systemError(const std::string& path, const char* action, int errnoValue);

}  // namespace octomix
