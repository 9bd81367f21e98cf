# pgexchange: the one entry point.
#   make        build everything
#   make test   install missing packages, build, run all test suites
#   make bench  build and run the benchmarks (prints ratios against a baseline)
#   make run    install missing packages, build and start the exchange
#   make clean  remove build output

BUILD_DIR ?= build
JOBS ?= 2
CORE_PACKAGES := build-essential cmake libgtest-dev libbenchmark-dev

.PHONY: all build deps test test-core test-core-long test-core-asan bench bench-core run clean format

all: build

deps:
	@scripts/ensure-packages.sh $(CORE_PACKAGES)

$(BUILD_DIR)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD_DIR)/Makefile
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build test-core test-core-asan

test-core: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The same core tests under AddressSanitizer + UBSan (shorter differential run).
test-core-asan: deps
	cmake -S . -B $(BUILD_DIR)-asan -DCMAKE_BUILD_TYPE=Debug -DPGX_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_DIR)-asan -j $(JOBS) --target core_tests
	PGX_DIFF_OPS=200000 $(BUILD_DIR)-asan/core_tests --gtest_brief=1

# A longer differential run on demand: make test-core-long PGX_DIFF_OPS=20000000
PGX_DIFF_OPS ?= 20000000
test-core-long: build
	PGX_DIFF_OPS=$(PGX_DIFF_OPS) $(BUILD_DIR)/core_tests --gtest_filter='Differential*'

bench: bench-core

bench-core: build
	$(BUILD_DIR)/core_bench

run: build
	@echo "make run: the matching core is built. Starting PostgreSQL, Redis and the frontend comes with the extension and frontend issues."

format:
	clang-format -i extension/core/*.h extension/core/*.cpp tests/core/*.cpp tests/core/*.h tests/perf/*.cpp

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-asan
