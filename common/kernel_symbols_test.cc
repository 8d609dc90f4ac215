#include "common/kernel_symbols.h"

#include "gtest/gtest.h"

namespace apq {
namespace {

constexpr char kKallsyms[] =
    "ffffffff81000000 T _stext\n"
    "ffffffff81200000 t anon_pipe_write\n"
    "ffffffff81200400 T pipe_read\n"
    "ffffffff81300000 D some_data\n"
    "ffffffff81400000 W weak_function\n"
    "ffffffffc0001000 t nf_hook_thing\t[nf_tables]\n";

TEST(KernelSymbolsTest, ResolvesInsideFunctions) {
  absl::StatusOr<KernelSymbols> symbols = KernelSymbols::Parse(kKallsyms);
  ASSERT_TRUE(symbols.ok()) << symbols.status();
  EXPECT_EQ(symbols->size(), 5u);  // the data symbol is skipped
  auto symbol = symbols->Resolve(0xffffffff81200010);
  ASSERT_TRUE(symbol.has_value());
  EXPECT_EQ(symbol->name, "anon_pipe_write");
  EXPECT_EQ(symbol->offset, 0x10u);
  EXPECT_EQ(symbols->NameOf(0xffffffff81200400), "pipe_read");
  EXPECT_EQ(symbols->NameOf(0xffffffff81400004), "weak_function");
  auto module = symbols->Resolve(0xffffffffc0001008);
  ASSERT_TRUE(module.has_value());
  EXPECT_EQ(module->module, "nf_tables");
  EXPECT_EQ(symbols->NameOf(0x1000), "0x1000");
}

TEST(KernelSymbolsTest, RejectsMalformedLines) {
  EXPECT_FALSE(KernelSymbols::Parse("ffffffff81000000 T\n").ok());
  EXPECT_FALSE(KernelSymbols::Parse("zzzz T name\n").ok());
  EXPECT_FALSE(KernelSymbols::Parse("ffffffff81000000 TT name\n").ok());
  EXPECT_FALSE(KernelSymbols::Parse("ffffffff81000000 t name nf_tables\n").ok());
  absl::Status status = KernelSymbols::Parse("ffffffff81000000 T a\n1 T b c d e\n").status();
  EXPECT_NE(status.message().find("line 2"), std::string::npos) << status;
}

TEST(KernelSymbolsTest, HiddenAddressesSayWhy) {
  absl::Status status = KernelSymbols::Parse("0000000000000000 T _stext\n0000000000000000 t f\n").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(status.message().find("kptr_restrict"), std::string::npos);
}

}  // namespace
}  // namespace apq
