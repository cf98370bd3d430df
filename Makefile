# Thin wrapper over CMake/CTest. The two commands that matter:
#   make run    the service, on a private throwaway PostgreSQL unless DATABASE_URL is set
# (make run-replicated: the same on a primary and its streaming standby, scripts/replica.sh)
#   make test   build and pass every test (starts and removes its own cluster)
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_config fuzz_mask fuzz_routes fuzz_http
CMAKE_ARGS ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX     ?= /usr/local

.PHONY: all deps build test test-faults test-asan test-tsan test-valgrind fuzz run run-replicated install bench format lint clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE faults

# Fault injection (tests/faults): restarts, terminated backends, a half-open
# network, max_connections, exhaustion; one summary line per case at the end.
test-faults: build
	@rm -f $(BUILD)/faults-summary.txt
	@ctest --test-dir $(BUILD) --output-on-failure -L faults; rc=$$?; \
	  cat $(BUILD)/faults-summary.txt 2>/dev/null; exit $$rc

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DPQPOOL_SANITIZE=address,undefined $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)

test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DPQPOOL_SANITIZE=thread $(CMAKE_ARGS)
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(BUILD_TSAN) --output-on-failure -j $(JOBS)

# the unit tests (no database) under valgrind memcheck; CTest runs each test
# through valgrind, whose exit status fails it on any error or leak
VALGRIND_OPTS ?= --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1
test-valgrind: build
	ctest --test-dir $(BUILD) -L unit -T memcheck --output-on-failure -j $(JOBS) \
	  --overwrite MemoryCheckCommand=$$(command -v valgrind) \
	  --overwrite "MemoryCheckCommandOptions=$(VALGRIND_OPTS)"

# libFuzzer targets (fuzz/), each run FUZZ_SECONDS on a copy of its seed corpus
fuzz: deps
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=clang -DPQPOOL_FUZZ=ON \
	  -DPQPOOL_SANITIZE=address,undefined -DBUILD_TESTING=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target $(FUZZ_TARGETS)
	fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

run: build
	@scripts/run.sh $(BUILD)/pqpool

run-replicated: build
	@scripts/run.sh --replicated $(BUILD)/pqpool

install: build
	cmake --install $(BUILD)

bench: build
	$(BUILD)/bench/bench_overhead

format:
	clang-format -i include/*.h src/*.[ch] common/*.[ch] cmd/pqpool/*.[ch] cmd/pqpool/serve/*.[ch] tests/*.[ch] tests/*/*.c examples/*.c bench/*.c fuzz/*.[ch]

lint: build
	clang-tidy -p $(BUILD) --quiet $$(jq -r '.[].file' $(BUILD)/compile_commands.json | \
	  grep -E '/(src|common|cmd/pqpool)/' | sort -u)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -Iinclude -Isrc -Icommon src common cmd

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
