# pgexchange: the one entry point.
#   make        build everything
#   make test   install missing packages, build, run all test suites
#   make bench  build and run the benchmarks (prints ratios against a baseline)
#   make run    install missing packages, build and start the exchange
#   make clean  remove build output

BUILD_DIR ?= build
JOBS ?= 2
CORE_PACKAGES := build-essential cmake libgtest-dev libbenchmark-dev
PG_PACKAGES := postgresql-15 postgresql-client-15 postgresql-server-dev-15
FRONTEND_PACKAGES := pkg-config libpq-dev libpqxx-dev libpistache-dev rapidjson-dev libhiredis-dev prometheus-cpp-dev \
                     redis-server libboost-dev libspdlog-dev libcli11-dev libjemalloc-dev \
                     python3-pytest python3-requests python3-websockets python3-psycopg
FUZZ_PACKAGES := clang libclang-rt-14-dev
DOCKER_CHECK_PACKAGES := curl python3-yaml
RUN_DIR := .run
RUN_PG_PORT ?= 15432
RUN_REDIS_PORT ?= 6390
RUN_HTTP_PORT ?= 8000
RUN_WS_PORT ?= 8001

.PHONY: all build deps ext install-ext test test-core test-core-long test-core-asan test-pg test-frontend test-docker test-fuzz fuzz bench \
        bench-core bench-core-ab bench-pg bench-pg-ab bench-pg-cpu-ab bench-frontend soak run stop clean format

all: build

deps:
	@scripts/ensure-packages.sh $(CORE_PACKAGES) $(PG_PACKAGES) $(FRONTEND_PACKAGES) $(FUZZ_PACKAGES) $(DOCKER_CHECK_PACKAGES)

$(BUILD_DIR)/Makefile: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD_DIR)/Makefile ext
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Out-of-tree PGXS build: objects, exchange.so and the SQL/control files go to $(BUILD_DIR)/ext.
EXT_DIR := $(BUILD_DIR)/ext
ext: deps
	@mkdir -p $(EXT_DIR)
	$(MAKE) -s -C $(EXT_DIR) -f $(CURDIR)/extension/Makefile -j $(JOBS)

# Installs the extension into PostgreSQL 15's folders (root or sudo).
install-ext: ext
	@BUILD_DIR=$(BUILD_DIR) scripts/install-extension.sh

test: build test-core test-core-asan test-fuzz test-pg test-frontend test-docker

# pg_regress, isolation, restart and crash tests on a throwaway cluster (port 25329).
test-pg: install-ext
	scripts/test-pg.sh

# REST, WebSocket and fault suites against real PostgreSQL, Redis and pgx-frontend processes, each suite on
# its own 127.0.0.1 ports (frontend/README.md, Tests).
test-frontend: build install-ext
	scripts/test-frontend.sh

# What docker/ holds, checked without a Docker engine: the compose file, the Dockerfile's sources, the
# runtime packages, the PostgreSQL entrypoint and the frontend with the compose environment (docker/README.md).
test-docker: build install-ext
	scripts/docker-check.sh

test-core: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The same core tests under AddressSanitizer + UBSan (shorter differential run).
test-core-asan: deps
	cmake -S . -B $(BUILD_DIR)-asan -DCMAKE_BUILD_TYPE=Debug -DPGX_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_DIR)-asan -j $(JOBS) --target core_tests
	PGX_DIFF_OPS=200000 $(BUILD_DIR)-asan/core_tests --gtest_brief=1

# libFuzzer: the core against the reference book, briefly in make test, for 10 minutes in make fuzz.
FUZZ_SECONDS ?= 600
test-fuzz: deps
	scripts/fuzz.sh 15

fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# A longer differential run on demand: make test-core-long PGX_DIFF_OPS=20000000
PGX_DIFF_OPS ?= 20000000
test-core-long: build
	PGX_DIFF_OPS=$(PGX_DIFF_OPS) $(BUILD_DIR)/core_tests --gtest_filter='Differential*'

bench: bench-core bench-pg bench-frontend

bench-core: build
	$(BUILD_DIR)/core_bench

# The working tree's core against the one at git revision BASE, in alternating rounds:
# make bench-core-ab BASE=<rev> [AB_ROUNDS=3] [AB_FILTER=<benchmark regex>]
bench-core-ab: build
	scripts/bench-core-ab.sh $(BASE) $(AB_ROUNDS) '$(AB_FILTER)'

# pgbench against the extension beside plain INSERT (PGX_BENCH_SECONDS per case).
bench-pg: install-ext
	scripts/bench-pg.sh

# The working tree's extension against the one at git revision BASE, in alternating rounds:
# make bench-pg-ab BASE=<rev> [AB_ROUNDS=3] [AB_SECONDS=8]
BASE ?= HEAD~1
AB_ROUNDS ?= 3
AB_SECONDS ?= 8
bench-pg-ab: install-ext
	scripts/bench-pg-ab.sh $(BASE) $(AB_ROUNDS) $(AB_SECONDS)

# The same two builds compared by the backend's CPU time per order
# make bench-pg-cpu-ab BASE=<rev> [AB_ROUNDS=3]
bench-pg-cpu-ab: install-ext
	scripts/bench-pg-cpu-ab.sh $(BASE) $(AB_ROUNDS)

# POST /orders end to end with an open-loop load, and WebSocket fan-out latency (ports 25379, 63799, 18200-18201).
bench-frontend: build install-ext
	scripts/bench-frontend.sh

# 10 minutes at 2,000 orders/s with WebSocket subscribers: latency, memory and database size per minute.
soak: build install-ext
	scripts/soak.sh

# A local cluster in .run/pg (127.0.0.1:$(RUN_PG_PORT)) with the extension, a demo instrument, the frontend's
# role pgx_frontend and an API key of client "demo" in .run/api-key (scripts/run-setup.sql),
# Redis on 127.0.0.1:$(RUN_REDIS_PORT) (.run/redis) and pgx-frontend on :$(RUN_HTTP_PORT) (REST) and
# :$(RUN_WS_PORT) (WebSocket), logging to .run/frontend.log.
run: build install-ext
	@scripts/pg-cluster.sh start $(RUN_DIR)/pg $(RUN_PG_PORT)
	@psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $(RUN_PG_PORT) -U postgres -f scripts/run-setup.sql
	@[ -s $(RUN_DIR)/api-key ] || psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $(RUN_PG_PORT) -U postgres \
	  -c "SELECT api_key FROM exchange.create_api_key('demo', 'make run')" > $(RUN_DIR)/api-key
	@echo "PostgreSQL with the exchange extension: psql -h 127.0.0.1 -p $(RUN_PG_PORT) -U postgres"
	@scripts/frontend-ctl.sh start $(RUN_DIR) $(BUILD_DIR)/frontend/pgx-frontend \
	  "host=127.0.0.1 port=$(RUN_PG_PORT) user=pgx_frontend dbname=postgres" $(RUN_REDIS_PORT) $(RUN_HTTP_PORT) $(RUN_WS_PORT)
	@echo "REST http://127.0.0.1:$(RUN_HTTP_PORT), WebSocket ws://127.0.0.1:$(RUN_WS_PORT)/stream  (make stop to stop)"
	@echo "API key of client 'demo' (also in $(RUN_DIR)/api-key): $$(cat $(RUN_DIR)/api-key)"

stop:
	@scripts/frontend-ctl.sh stop $(RUN_DIR)
	@scripts/pg-cluster.sh stop $(RUN_DIR)/pg

format:
	clang-format -i extension/core/*.h extension/core/*.cpp tests/core/*.cpp tests/core/*.h tests/perf/*.cpp

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-asan
