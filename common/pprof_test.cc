#include "common/pprof.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pprof/profile.pb.h"

namespace apq {
namespace {

using ::testing::HasSubstr;

std::string Gunzipped(const std::string& gzipped) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(gzipped.size() * 20 + 4096, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzipped.data()));
  stream.avail_in = static_cast<uInt>(gzipped.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

// A pipe path of the kernel image and a driver path through a module: a
// profile of two code objects, labels and both kinds of values.
MemoryProfile TwoPaths() {
  MemoryProfile profile;
  profile.build_ids["vmlinux"] = "5f2a";
  profile.samples.push_back({{{"ksys_write", "vmlinux"}, {"pipe_write", "vmlinux"}},
                             16 << 20,
                             0,
                             {{"process", "filler"}, {"class", "hidden"}},
                             {{"pid", 4242}}});
  profile.samples.push_back({{{"napi_poll", "vmlinux"}, {"mlx5e_alloc_rx_wqes", "mlx5_core"}}, 8192, 1 << 20, {}, {}});
  profile.comments = {"a test"};
  return profile;
}

std::string StringAt(const apq::pprof::Profile& p, int64_t index) { return p.string_table(static_cast<int>(index)); }

TEST(PprofTest, ProfileCarriesPathsValuesMappingsAndLabels) {
  absl::StatusOr<std::string> gzipped = GzippedProfile(TwoPaths());
  ASSERT_TRUE(gzipped.ok()) << gzipped.status();
  apq::pprof::Profile p;
  ASSERT_TRUE(p.ParseFromString(Gunzipped(*gzipped)));
  ASSERT_EQ(StringAt(p, 0), "");
  ASSERT_EQ(p.sample_type_size(), 4);
  EXPECT_EQ(StringAt(p, p.sample_type(0).type()), "inuse_space");
  EXPECT_EQ(StringAt(p, p.sample_type(3).type()), "alloc_objects");
  EXPECT_EQ(p.default_sample_type(), p.sample_type(0).type());
  ASSERT_EQ(p.sample_size(), 2);
  EXPECT_THAT(p.sample(0).value(), ::testing::ElementsAre(16 << 20, 4096, 0, 0));
  EXPECT_THAT(p.sample(1).value(), ::testing::ElementsAre(8192, 2, 1 << 20, 256));
  // Leaf first, each location one function of its object's mapping.
  ASSERT_EQ(p.sample(0).location_id_size(), 2);
  const apq::pprof::Location& leaf = p.location(static_cast<int>(p.sample(0).location_id(0)) - 1);
  EXPECT_EQ(StringAt(p, p.function(static_cast<int>(leaf.line(0).function_id()) - 1).name()), "pipe_write");
  ASSERT_EQ(p.mapping_size(), 2);
  EXPECT_EQ(StringAt(p, p.mapping(0).filename()), "vmlinux");
  EXPECT_EQ(StringAt(p, p.mapping(0).build_id()), "5f2a");
  EXPECT_EQ(StringAt(p, p.mapping(1).filename()), "mlx5_core");
  EXPECT_EQ(p.mapping(1).build_id(), 0) << "no build ID known: none given";
  const apq::pprof::Location& module_leaf = p.location(static_cast<int>(p.sample(1).location_id(0)) - 1);
  EXPECT_EQ(module_leaf.mapping_id(), p.mapping(1).id());
  EXPECT_NE(module_leaf.address(), leaf.address());
  ASSERT_EQ(p.sample(0).label_size(), 3);
  EXPECT_EQ(StringAt(p, p.sample(0).label(2).key()), "pid");
  EXPECT_EQ(p.sample(0).label(2).num(), 4242);
  EXPECT_EQ(StringAt(p, p.sample(0).label(0).key()), "process");
  EXPECT_EQ(StringAt(p, p.sample(0).label(0).str()), "filler");
}

// The real consumer: Debian's go tool pprof reads the profile and prints the
// same paths and totals.
TEST(PprofTest, GoToolPprofReadsIt) {
  absl::StatusOr<std::string> gzipped = GzippedProfile(TwoPaths());
  ASSERT_TRUE(gzipped.ok());
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("apq-pprof-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / "apq.pb.gz";
  std::ofstream(file, std::ios::binary) << *gzipped;
  auto run = [&](const std::string& options) {
    const std::string command = "cd '" + dir.string() + "' && HOME='" + dir.string() + "' GOCACHE='" + dir.string() +
                                "/cache' go tool pprof " + options + " '" + file.string() + "' 2>&1";
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    char buffer[4096];
    while (pipe && fgets(buffer, sizeof buffer, pipe)) out += buffer;
    EXPECT_EQ(pipe ? pclose(pipe) : -1, 0) << command << "\n" << out;
    return out;
  };
  const std::string inuse = run("-top -sample_index=inuse_space -unit=B");
  EXPECT_THAT(inuse, HasSubstr("of 16785408B total")) << inuse;
  EXPECT_THAT(inuse, HasSubstr("16777216B")) << inuse;
  EXPECT_THAT(inuse, HasSubstr("pipe_write")) << inuse;
  const std::string allocated = run("-top -sample_index=alloc_space -unit=B");
  EXPECT_THAT(allocated, HasSubstr("of 1048576B total")) << allocated;
  EXPECT_THAT(allocated, HasSubstr("mlx5e_alloc_rx_wqes")) << allocated;
  for (const char* focus : {"-tagfocus=process=filler", "-tagfocus=pid=4242"}) {
    const std::string tagged = run(std::string("-top -sample_index=inuse_space -unit=B ") + focus);
    EXPECT_THAT(tagged, HasSubstr("Showing nodes accounting for 16777216B, 100% of 16785408B total")) << tagged;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace apq
