// Safe outputs: checks before work, a lock against concurrent writers, temporary names, a marker in every directory
// output, and renames that never replace what kernelscope did not write (renameat2 with RENAME_NOREPLACE).
#include "datasets/output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ks {

namespace fs = std::filesystem;

namespace {

fs::path normalised(fs::path path) {
  if (path.empty()) throw std::invalid_argument("--out is empty: name the output");
  path = fs::weakly_canonical(fs::absolute(path));
  if (path.filename().empty()) path = path.parent_path();
  return path;
}

bool inside_or_same(const fs::path& inner, const fs::path& outer) {  // inner == outer or inner is below outer
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

bool process_alive(long pid) { return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

std::string marker_kind(const fs::path& directory) {
  std::ifstream in(directory / kOutputMarker);
  if (!in) return "";
  try {
    return nlohmann::json::parse(in).at("kind").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return "";
  }
}

// The checks every output makes before any work: not the current directory or a parent of it, not an input or a parent
// of one, not the file-system root.
void check_place(const fs::path& final_path, const OutputOptions& options) {
  if (final_path == final_path.root_path()) throw std::invalid_argument("--out " + final_path.string() + " is the file-system root; name a new directory");
  if (inside_or_same(fs::weakly_canonical(fs::current_path()), final_path))
    throw std::invalid_argument("--out " + final_path.string() + " is the current directory or one of its parents; name a new directory");
  for (const fs::path& input : options.inputs)
    if (!input.empty() && inside_or_same(fs::weakly_canonical(fs::absolute(input)), final_path))
      throw std::invalid_argument("--out " + final_path.string() + " would replace the input " + input.string() + "; choose another --out");
}

std::string hex_hash(const std::string& text) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(std::hash<std::string>{}(text)));
  return out;
}

int rename_no_replace(const fs::path& from, const fs::path& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  if (fs::exists(to)) return EEXIST;  // a file system without RENAME_NOREPLACE: check, then rename
  return std::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

// Removes temporary outputs beside final_path that dead kernelscope processes left behind, and says so.
void clean_leftovers(const fs::path& final_path) {
  const std::string prefixes[] = {"." + final_path.filename().string() + ".kernelscope-", ".ks-" + hex_hash(final_path.filename().string()) + "-"};
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(final_path.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    for (const std::string& prefix : prefixes) {
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string rest = name.substr(prefix.size());
      const size_t dash = rest.rfind('-');
      if (dash == std::string::npos || (rest.rfind("partial", 0) != 0 && rest.rfind("replaced", 0) != 0)) continue;
      const long pid = std::strtol(rest.c_str() + dash + 1, nullptr, 10);
      if (process_alive(pid)) continue;
      fs::remove_all(entry.path(), error);
      std::fprintf(stderr, "kernelscope: removed %s, left by an interrupted kernelscope (pid %ld)\n", entry.path().c_str(), pid);
    }
  }
}

// What is at the final path must be nothing, or (with --overwrite) an earlier kernelscope output of the same kind.
void check_replaceable(const fs::path& final_path, const OutputOptions& options) {
  if (!fs::exists(fs::symlink_status(final_path))) return;
  if (!options.overwrite) throw std::runtime_error(final_path.string() + " already exists; choose another --out or pass --overwrite");
  if (!fs::is_directory(final_path) || marker_kind(final_path) != options.kind)
    throw std::runtime_error(final_path.string() + " exists and is not an earlier kernelscope " + options.kind + " output (no " + kOutputMarker +
                             " marker of that kind); --overwrite replaces only those: choose another --out");
}

// Takes the lock beside final_path with flock and returns its descriptor. The kernel drops a flock when its process
// ends, however it ends, so no lock is ever stale and there is no moment, as there was with a pid file created by
// O_EXCL and then written, when a second writer reads an empty lock and takes it over.
int take_lock(const fs::path& lock, const fs::path& final_path) {
  for (;;) {
    const int fd = open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot write beside " + final_path.string() + ": " + std::strerror(errno) + "; choose another --out");
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      char pid[32] = {};
      const ssize_t got = pread(fd, pid, sizeof pid - 1, 0);
      close(fd);
      if (error != EWOULDBLOCK) throw std::runtime_error("cannot lock " + final_path.string() + ": " + std::strerror(error) + "; choose another --out");
      const std::string holder = got > 0 ? " (pid " + std::string(pid) + ")" : "";
      throw std::runtime_error("another kernelscope" + holder + " is writing " + final_path.string() + "; wait for it or choose another --out");
    }
    // The writer before us removes the lock file when done; if it did so after our open, we hold a lock on a name no one
    // else sees, and open again.
    struct stat opened {}, named {};
    if (fstat(fd, &opened) == 0 && stat(lock.c_str(), &named) == 0 && opened.st_dev == named.st_dev && opened.st_ino == named.st_ino) {
      const std::string pid = std::to_string(getpid());  // for the message of a writer that finds the lock held
      if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        const int error = errno;
        unlink(lock.c_str());
        close(fd);
        throw std::runtime_error("cannot write the lock beside " + final_path.string() + ": " + std::strerror(error) + "; choose another --out");
      }
      return fd;
    }
    close(fd);
  }
}

// Removes the lock file while still holding the lock, then drops it (the order take_lock's inode check relies on).
void release_lock(const fs::path& lock, int fd) {
  unlink(lock.c_str());
  close(fd);
}

}  // namespace

fs::path temporary_output_path(const fs::path& final_path, const std::string& tag) {
  // The lock has one name for every process; the other temporary names carry the writer's pid.
  const std::string suffix = tag == "lock" ? tag : tag + "-" + std::to_string(getpid()), name = final_path.filename().string();
  std::string temporary = "." + name + ".kernelscope-" + suffix;
  if (temporary.size() > 255) temporary = ".ks-" + hex_hash(name) + "-" + suffix;  // NAME_MAX
  return final_path.parent_path() / temporary;
}

OutputDirectory::OutputDirectory(fs::path final_path, OutputOptions options) : final_(normalised(final_path)), options_(std::move(options)) {
  check_place(final_, options_);
  check_replaceable(final_, options_);  // before any side effect, so a refused --out leaves nothing behind
  if (!fs::is_directory(final_.parent_path())) fs::create_directories(final_.parent_path());
  lock_ = temporary_output_path(final_, "lock");
  lock_fd_ = take_lock(lock_, final_);
  try {
    // Again under the lock: another kernelscope may have finished this output between the first check and the lock.
    check_replaceable(final_, options_);
  } catch (...) {
    release_lock(lock_, lock_fd_);  // a constructor that throws runs no destructor
    throw;
  }
  clean_leftovers(final_);
  partial_ = temporary_output_path(final_, "partial");
  fs::create_directory(partial_);
  std::ofstream(partial_ / kOutputMarker) << nlohmann::json{{"kind", options_.kind}, {"written_by", "kernelscope"}}.dump() << "\n";
}

OutputDirectory::~OutputDirectory() {
  std::error_code ignored;
  if (!finished_ && !partial_.empty()) fs::remove_all(partial_, ignored);
  if (lock_fd_ >= 0) release_lock(lock_, lock_fd_);
}

void OutputDirectory::finish() {
  if (fs::exists(fs::symlink_status(final_))) {
    if (!options_.overwrite || !fs::is_directory(final_) || marker_kind(final_) != options_.kind)
      throw std::runtime_error(final_.string() + " appeared while kernelscope was writing and is not replaceable; it was left as it is and this " +
                               options_.kind + " output was not written");
    const fs::path replaced = temporary_output_path(final_, "replaced");
    if (const int error = rename_no_replace(final_, replaced))
      throw std::runtime_error("cannot move the earlier " + final_.string() + " aside: " + std::strerror(error));
    if (const int error = rename_no_replace(partial_, final_)) {
      rename_no_replace(replaced, final_);
      throw std::runtime_error("cannot rename the new output to " + final_.string() + ": " + std::strerror(error) + "; the earlier one is back");
    }
    fs::remove_all(replaced);
  } else if (const int error = rename_no_replace(partial_, final_)) {
    throw std::runtime_error(error == EEXIST || error == ENOTEMPTY
                                 ? final_.string() + " appeared while kernelscope was writing; it was left as it is and this output was not written"
                                 : "cannot rename the output to " + final_.string() + ": " + std::strerror(error));
  }
  finished_ = true;
}

OutputFile::OutputFile(fs::path final_path, OutputOptions options) : final_(normalised(final_path)), options_(std::move(options)) {
  check_place(final_, options_);
  if (fs::exists(fs::symlink_status(final_))) {
    if (fs::is_directory(final_)) throw std::runtime_error("--out " + final_.string() + " is a directory; name a .npy file");
    if (!options_.overwrite) throw std::runtime_error(final_.string() + " already exists; choose another --out or pass --overwrite");
    std::string header(128, '\0');
    std::ifstream(final_, std::ios::binary).read(header.data(), static_cast<std::streamsize>(header.size()));
    if (header.compare(0, 6, "\x93NUMPY") != 0 || header.find("'descr': '<f8'") == std::string::npos)
      throw std::runtime_error(final_.string() + " is not a float64 .npy; --overwrite replaces only kernelscope's kernels: choose another --out");
  }
  if (!fs::is_directory(final_.parent_path())) fs::create_directories(final_.parent_path());
  partial_ = temporary_output_path(final_, "partial");
  std::ofstream probe(partial_, std::ios::binary);
  if (!probe) throw std::runtime_error("cannot write " + final_.string() + ": " + std::strerror(errno) + "; choose another --out");
}

OutputFile::~OutputFile() {
  std::error_code ignored;
  if (!finished_) fs::remove(partial_, ignored);
}

void OutputFile::finish() {
  if (options_.overwrite) {
    if (std::rename(partial_.c_str(), final_.c_str()) != 0)
      throw std::runtime_error("cannot rename the output to " + final_.string() + ": " + std::strerror(errno));
  } else if (const int error = rename_no_replace(partial_, final_)) {
    throw std::runtime_error(error == EEXIST ? final_.string() + " appeared while kernelscope was writing; it was left as it is"
                                             : "cannot rename the output to " + final_.string() + ": " + std::strerror(error));
  }
  finished_ = true;
}

}  // namespace ks
