// Safe outputs: checks before work, a lock against concurrent writers, temporary names, a marker in every directory
// output, and renames that never replace what kernelscope did not write (renameat2 with RENAME_NOREPLACE).
#include "datasets/output.h"

#include <fcntl.h>
#include <signal.h>
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
  if (fs::exists(fs::symlink_status(final_))) {
    if (!options_.overwrite) throw std::runtime_error(final_.string() + " already exists; choose another --out or pass --overwrite");
    if (!fs::is_directory(final_) || marker_kind(final_) != options_.kind)
      throw std::runtime_error(final_.string() + " exists and is not an earlier kernelscope " + options_.kind + " output (no " + kOutputMarker +
                               " marker of that kind); --overwrite replaces only those: choose another --out");
  }
  if (!fs::is_directory(final_.parent_path())) fs::create_directories(final_.parent_path());
  lock_ = temporary_output_path(final_, "lock");
  for (int attempt = 0; attempt < 2 && !locked_; ++attempt) {
    const int fd = open(lock_.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
      const std::string pid = std::to_string(getpid());
      locked_ = write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      close(fd);
      continue;
    }
    if (errno != EEXIST) throw std::runtime_error("cannot write beside " + final_.string() + ": " + std::strerror(errno) + "; choose another --out");
    std::ifstream in(lock_);
    long holder = 0;
    in >> holder;
    if (process_alive(holder))
      throw std::runtime_error("another kernelscope (pid " + std::to_string(holder) + ") is writing " + final_.string() + "; wait for it or choose another --out");
    fs::remove(lock_);  // a lock whose process is gone
  }
  if (!locked_) throw std::runtime_error("cannot lock " + final_.string() + " for writing; choose another --out");
  clean_leftovers(final_);
  partial_ = temporary_output_path(final_, "partial");
  fs::create_directory(partial_);
  std::ofstream(partial_ / kOutputMarker) << nlohmann::json{{"kind", options_.kind}, {"written_by", "kernelscope"}}.dump() << "\n";
}

OutputDirectory::~OutputDirectory() {
  std::error_code ignored;
  if (!finished_ && !partial_.empty()) fs::remove_all(partial_, ignored);
  if (locked_) fs::remove(lock_, ignored);
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
