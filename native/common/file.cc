#include "common/file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace octomix {

std::string systemError(const std::string& path, const char* action, int errnoValue) {
  return std::string("cannot ") + action + " " + path + ": " + std::strerror(errnoValue);
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

bool FileDescriptor::close(std::string& error) {
  if (fd_ < 0) return true;
  int fd = release();
  if (::close(fd) != 0) {
    error = std::strerror(errno);
    return false;
  }
  return true;
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, std::string& error, bool copyOnWrite) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    error = systemError(path, "open", errno);
    return nullptr;
  }
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) {
    error = systemError(path, "stat", errno);
    return nullptr;
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(info.st_size);
  if (file->size_ == 0) return file;
  // Copy-on-write views (so JS may hold writable typed arrays whose writes never reach the file) are mapped
  // MAP_NORESERVE: no swap is reserved for pages never written, so a shard larger than RAM + swap still maps.
  void* data = copyOnWrite ? ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd.get(), 0)
                           : ::mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) {
    error = systemError(path, "mmap", errno);
    return nullptr;
  }
  file->data_ = static_cast<const uint8_t*>(data);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace octomix
