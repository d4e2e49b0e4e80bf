// Outputs written safely: a directory or file is written under a recognisable temporary name beside its final path and
// renamed into place when complete; it never replaces anything kernelscope did not write. It does not format contents.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ks {

// What an output may replace with --overwrite: only an earlier kernelscope output of the same kind. A directory carries
// the marker file kOutputMarker ({"kind": ...}); a file output (a kernel .npy) must be a float64 .npy to be replaced.
inline constexpr const char* kOutputMarker = ".kernelscope-output";

struct OutputOptions {
  std::string kind = "run";                    // run, epk, study, report, demo
  bool overwrite = false;
  std::vector<std::filesystem::path> inputs;   // what the command reads: never the output, nor inside it
};

// A directory output. The constructor checks everything it can before any work starts: the path is not `.`, `..`, the
// current directory or one of its parents, nor an input or a parent of one; an existing path is refused unless --overwrite
// and it is a kernelscope output of the same kind; a lock beside it makes concurrent writers fail at once. Leftover
// temporary outputs of dead processes beside it are removed (they carry the marker) and reported on stderr.
class OutputDirectory {
 public:
  OutputDirectory(std::filesystem::path final_path, OutputOptions options);
  ~OutputDirectory();  // unfinished: the temporary directory is removed; the lock is released
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;
  const std::filesystem::path& directory() const { return partial_; }  // write here
  const std::filesystem::path& final_path() const { return final_; }
  // Renames the temporary directory to the final path (an earlier output of the same kind is replaced only with
  // --overwrite). Throws, leaving whatever is at the final path untouched, when something else appeared there meanwhile.
  void finish();

 private:
  std::filesystem::path final_, partial_, lock_;
  OutputOptions options_;
  bool finished_ = false;
  int lock_fd_ = -1;  // held (flock) from the constructor to the destructor
};

// A single-file output (a kernel .npy): created at once under a temporary name, so an unwritable --out fails before any
// computation; an existing file is replaced only with --overwrite and only when it is a float64 .npy.
class OutputFile {
 public:
  OutputFile(std::filesystem::path final_path, OutputOptions options);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  const std::filesystem::path& path() const { return partial_; }  // write here
  void finish();

 private:
  std::filesystem::path final_, partial_;
  OutputOptions options_;
  bool finished_ = false;
};

// A temporary name beside `final_path`: `.NAME.kernelscope-TAG-PID` (`.NAME.kernelscope-lock` for the lock, one name for
// every process), shortened with a hash of NAME when that would exceed the file-name limit.
std::filesystem::path temporary_output_path(const std::filesystem::path& final_path, const std::string& tag);

}  // namespace ks
