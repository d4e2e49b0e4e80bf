// Safe outputs: nothing kernelscope did not write is ever deleted or replaced, concurrent writers fail at once, leftovers
// of interrupted runs are cleaned, and long names still get a temporary name.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "datasets/output.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

std::string read_text(const fs::path& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("an output never replaces the current directory, its parents, an input, or a foreign folder") {
  const test::ScratchDirectory s("output");
  CHECK_THROWS_WITH(OutputDirectory(".", {"run", true, {}}), doctest::Contains("current directory"));
  CHECK_THROWS_WITH(OutputDirectory("..", {"run", true, {}}), doctest::Contains("current directory"));
  CHECK_THROWS_WITH(OutputDirectory("/", {"run", true, {}}), doctest::Contains("root"));
  fs::create_directories(s.dir / "run" / "inner");
  CHECK_THROWS_WITH(OutputDirectory(s.dir / "run", {"epk", true, {s.dir / "run"}}), doctest::Contains("would replace the input"));
  CHECK_THROWS_WITH(OutputDirectory(s.dir, {"epk", true, {s.dir / "run" / "inner"}}), doctest::Contains("would replace the input"));
  // A foreign folder: refused without and with --overwrite, its contents untouched.
  fs::create_directories(s.dir / "foreign");
  write_text(s.dir / "foreign" / "keep.txt", "mine");
  CHECK_THROWS_WITH(OutputDirectory(s.dir / "foreign", {"run", false, {}}), doctest::Contains("already exists"));
  CHECK_THROWS_WITH(OutputDirectory(s.dir / "foreign", {"run", true, {}}), doctest::Contains("not an earlier kernelscope run output"));
  CHECK(read_text(s.dir / "foreign" / "keep.txt") == "mine");
}

TEST_CASE("--overwrite replaces an earlier output of the same kind only; a folder that appears meanwhile is kept") {
  const test::ScratchDirectory s("output");
  {
    OutputDirectory first(s.dir / "out", {"run", false, {}});
    write_text(first.directory() / "a.txt", "first");
    first.finish();
  }
  CHECK(fs::exists(s.dir / "out" / kOutputMarker));
  CHECK_THROWS_WITH(OutputDirectory(s.dir / "out", {"epk", true, {}}), doctest::Contains("not an earlier kernelscope epk output"));
  {
    OutputDirectory second(s.dir / "out", {"run", true, {}});
    write_text(second.directory() / "b.txt", "second");
    second.finish();
  }
  CHECK_FALSE(fs::exists(s.dir / "out" / "a.txt"));
  CHECK(read_text(s.dir / "out" / "b.txt") == "second");
  // Another program creates the folder while we write: finish fails and leaves it as it is.
  OutputDirectory late(s.dir / "late", {"run", true, {}});
  fs::create_directories(s.dir / "late");
  write_text(s.dir / "late" / "theirs.txt", "theirs");
  CHECK_THROWS_WITH(late.finish(), doctest::Contains("appeared while kernelscope was writing"));
  CHECK(read_text(s.dir / "late" / "theirs.txt") == "theirs");
}

TEST_CASE("concurrent writers to one output: the second fails at once; leftovers of dead processes are removed") {
  const test::ScratchDirectory s("output");
  {
    OutputDirectory holder(s.dir / "out", {"run", false, {}});
    CHECK(fs::exists(s.dir / ".out.kernelscope-lock"));
    CHECK_THROWS_WITH(OutputDirectory(s.dir / "out", {"run", false, {}}), doctest::Contains("another kernelscope"));
    CHECK_THROWS_WITH(OutputDirectory(s.dir / "out", {"run", true, {}}), doctest::Contains("another kernelscope"));
  }
  // A partial directory of a process that no longer exists (pid far above pid_max), and one of a live process (pid 1).
  const fs::path dead = s.dir / ".out.kernelscope-partial-999999999", live = s.dir / ".out.kernelscope-partial-1";
  fs::create_directories(dead);
  fs::create_directories(live);
  write_text(s.dir / ".out.kernelscope-lock", "999999999");  // a lock whose process is gone is taken over
  {
    OutputDirectory writer(s.dir / "out", {"run", false, {}});
    writer.finish();
  }
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live));
  // No temporary names are left behind by a finished or an abandoned output.
  { OutputDirectory abandoned(s.dir / "gone", {"run", false, {}}); }
  CHECK_FALSE(fs::exists(s.dir / "gone"));
  int leftovers = 0;
  for (const auto& entry : fs::directory_iterator(s.dir)) leftovers += entry.path().filename().string().find("kernelscope-") != std::string::npos;
  CHECK(leftovers == 1);  // the live process's partial
}

TEST_CASE("a lock held but not yet written (no pid in it) still stops a second writer; an unheld one is taken") {
  // The race CI met: a writer had created its lock file and not yet written its pid when a second writer read it empty,
  // took it for a dead writer's and removed it, and both wrote. The lock is the flock now, not the pid in the file.
  const test::ScratchDirectory s("output");
  const fs::path lock = s.dir / ".out.kernelscope-lock";
  const int fd = open(lock.c_str(), O_CREAT | O_RDWR, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);
  CHECK_THROWS_WITH(OutputDirectory(s.dir / "out", {"run", false, {}}), doctest::Contains("another kernelscope is writing"));
  CHECK(fs::exists(lock));  // the loser leaves the holder's lock alone
  close(fd);                 // the holder ends without removing its file, as a killed process does
  {
    OutputDirectory writer(s.dir / "out", {"run", false, {}});
    writer.finish();
  }
  CHECK(fs::exists(s.dir / "out"));
  CHECK_FALSE(fs::exists(lock));
}

TEST_CASE("a legal output name of 250 characters gets a short temporary name") {
  const test::ScratchDirectory s("output");
  const std::string name(250, 'n');
  OutputDirectory writer(s.dir / name, {"run", false, {}});
  CHECK(writer.directory().filename().string().size() <= 255);
  writer.finish();
  CHECK(fs::is_directory(s.dir / name));
}

TEST_CASE("a file output is created before any work and replaces only a float64 .npy") {
  const test::ScratchDirectory s("output");
  CHECK_THROWS_WITH(OutputFile("/proc/kernelscope-cannot-write.npy", {"kernel", false, {}}), doctest::Contains("cannot write"));
  write_text(s.dir / "notes.txt", "mine");
  CHECK_THROWS_WITH(OutputFile(s.dir / "notes.txt", {"kernel", false, {}}), doctest::Contains("already exists"));
  CHECK_THROWS_WITH(OutputFile(s.dir / "notes.txt", {"kernel", true, {}}), doctest::Contains("not a float64 .npy"));
  CHECK(read_text(s.dir / "notes.txt") == "mine");
  {
    OutputFile abandoned(s.dir / "k.npy", {"kernel", false, {}});
    CHECK(fs::exists(abandoned.path()));
  }
  CHECK(fs::is_empty(s.dir) == false);
  CHECK_FALSE(fs::exists(s.dir / "k.npy"));
  for (const auto& entry : fs::directory_iterator(s.dir)) CHECK(entry.path().filename() == "notes.txt");
}

}  // namespace ks
