// Symbol normalization: two hosts on one kernel build, with different KASLR
// offsets, send identical frames, and one symbol table names them.
#include "agent/code_objects.h"

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace apq {
namespace {

std::string Kallsyms(uint64_t kernel_base, uint64_t module_base) {
  return absl::StrFormat(
      "%x T _stext\n%x t anon_pipe_write\n%x T vfs_write\n%x t nft_do_chain\t[nf_tables]\n%x t "
      "nft_lookup\t[nf_tables]\n",
      kernel_base, kernel_base + 0x1000, kernel_base + 0x2000, module_base, module_base + 0x400);
}

std::string FakeBuildId(const std::string& module) { return module.empty() ? "kernel-build" : module + "-build"; }

TEST(CodeObjectsTest, HostsWithDifferentKaslrOffsetsSendTheSameFrames) {
  KernelSymbols host_a = *KernelSymbols::Parse(Kallsyms(0xffffffff81000000, 0xffffffffc0100000));
  KernelSymbols host_b = *KernelSymbols::Parse(Kallsyms(0xffffffffa7200000, 0xffffffffc3a00000));
  KallsymsFrameEncoder a(&host_a, FakeBuildId), b(&host_b, FakeBuildId);
  for (uint64_t delta : {0x1010ull, 0x2004ull}) {
    apq::v1::Frame fa = a.Encode(0xffffffff81000000 + delta), fb = b.Encode(0xffffffffa7200000 + delta);
    EXPECT_EQ(fa.SerializeAsString(), fb.SerializeAsString());
    EXPECT_EQ(fa.offset(), delta);
  }
  apq::v1::Frame ma = a.Encode(0xffffffffc0100408), mb = b.Encode(0xffffffffc3a00408);
  EXPECT_EQ(ma.SerializeAsString(), mb.SerializeAsString());
  EXPECT_EQ(ma.offset(), 0x408u);

  std::vector<apq::v1::CodeObject> objects = a.TakeNewObjects();
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_TRUE(a.TakeNewObjects().empty());
  for (const auto& object : objects) {
    if (object.name() == "vmlinux")
      EXPECT_EQ(object.build_id(), "kernel-build");
    else
      EXPECT_EQ(object.name(), "nf_tables");
  }

  // The aggregator names both hosts' frames with host A's upload.
  EXPECT_FALSE(a.SymbolTableOf("../../../etc/shadow").has_value());
  EXPECT_FALSE(a.SymbolTableOf("[unknown]").has_value());
  apq::v1::SymbolTable table = *a.SymbolTableOf("vmlinux");
  EXPECT_EQ(table.build_id(), "kernel-build");
  std::vector<std::pair<uint64_t, std::string>> offsets;
  for (const auto& symbol : table.symbols()) offsets.emplace_back(symbol.offset(), symbol.name());
  KernelSymbols kernel = KernelSymbols::FromOffsets(offsets);
  EXPECT_EQ(kernel.NameOf(b.Encode(0xffffffffa7201010).offset()), "anon_pipe_write");
}

TEST(CodeObjectsTest, UnknownAddressesDoNotLeakTheKaslrOffset) {
  KernelSymbols host = *KernelSymbols::Parse(Kallsyms(0xffffffff81000000, 0xffffffffc0100000));
  KallsymsFrameEncoder encoder(&host, FakeBuildId);
  apq::v1::Frame frame = encoder.Encode(0x1234);
  EXPECT_EQ(frame.offset(), 0u);
  std::vector<apq::v1::CodeObject> objects = encoder.TakeNewObjects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].name(), "[unknown]");
}

}  // namespace
}  // namespace apq
