# Redis and PostgreSQL for the history-store and shard tests (issue 10), from Debian's packages.
# Sourced by .ci/run: start_test_servers exports TEST_REDIS_URL and TEST_POSTGRES_URL; stop_test_servers
# stops both. Bound to 127.0.0.1 on ports of their own, data in a temp folder that is removed at the end.
# Usable by hand too: `source .ci/test-servers.sh && start_test_servers` (then stop_test_servers).

TEST_REDIS_PORT="${TEST_REDIS_PORT:-16390}"
TEST_POSTGRES_PORT="${TEST_POSTGRES_PORT:-15440}"
TEST_SERVERS_PASSWORD="moodbot-test-pw"

start_test_servers() {
  if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null \
      || { echo "test servers: apt-get install failed; Redis/PostgreSQL tests will be skipped"; return 0; }
  fi
  TEST_SERVERS_DIR="$(mktemp -d /tmp/moodbot-servers.XXXXXX)"
  chmod 755 "$TEST_SERVERS_DIR"

  redis-server --bind 127.0.0.1 --port "$TEST_REDIS_PORT" --requirepass "$TEST_SERVERS_PASSWORD" \
    --save '' --appendonly no --dir "$TEST_SERVERS_DIR" --daemonize yes \
    --pidfile "$TEST_SERVERS_DIR/redis.pid" --logfile "$TEST_SERVERS_DIR/redis.log" \
    && for _ in $(seq 50); do redis-cli -p "$TEST_REDIS_PORT" -a "$TEST_SERVERS_PASSWORD" --no-auth-warning ping >/dev/null 2>&1 && break; sleep 0.1; done \
    && redis-cli -p "$TEST_REDIS_PORT" -a "$TEST_SERVERS_PASSWORD" --no-auth-warning ping >/dev/null 2>&1 \
    && export TEST_REDIS_URL="redis://:$TEST_SERVERS_PASSWORD@127.0.0.1:$TEST_REDIS_PORT" \
    || echo "test servers: redis-server did not start (see $TEST_SERVERS_DIR/redis.log)"

  # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
  local bin pgdata="$TEST_SERVERS_DIR/pg"
  bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
  install -d -o postgres -g postgres "$pgdata"
  if su postgres -c "$bin/initdb -D $pgdata -U postgres --auth-local=trust --auth-host=scram-sha-256" >"$TEST_SERVERS_DIR/initdb.log" 2>&1 \
    && su postgres -c "$bin/pg_ctl -D $pgdata -l $pgdata/server.log -w -o \"-p $TEST_POSTGRES_PORT -k $pgdata -c listen_addresses=127.0.0.1\" start" >/dev/null \
    && su postgres -c "psql -h $pgdata -p $TEST_POSTGRES_PORT -U postgres -qc \"CREATE USER moodbot PASSWORD '$TEST_SERVERS_PASSWORD'\"" \
    && su postgres -c "psql -h $pgdata -p $TEST_POSTGRES_PORT -U postgres -qc 'CREATE DATABASE moodbot_test OWNER moodbot'"; then
    export TEST_POSTGRES_URL="postgresql://moodbot:$TEST_SERVERS_PASSWORD@127.0.0.1:$TEST_POSTGRES_PORT/moodbot_test"
  else
    echo "test servers: postgresql did not start (see $TEST_SERVERS_DIR)"
  fi
  TEST_POSTGRES_BIN="$bin"
  echo "test servers: redis ${TEST_REDIS_URL:+up on 127.0.0.1:$TEST_REDIS_PORT}, postgresql ${TEST_POSTGRES_URL:+up on 127.0.0.1:$TEST_POSTGRES_PORT} (empty: missing)"
}

stop_test_servers() {
  [ -n "${TEST_SERVERS_DIR:-}" ] || return 0
  [ -f "$TEST_SERVERS_DIR/redis.pid" ] && kill "$(cat "$TEST_SERVERS_DIR/redis.pid")" 2>/dev/null
  [ -f "$TEST_SERVERS_DIR/pg/postmaster.pid" ] && su postgres -c "$TEST_POSTGRES_BIN/pg_ctl -D $TEST_SERVERS_DIR/pg -m fast -w stop" >/dev/null
  sleep 0.5
  rm -rf "$TEST_SERVERS_DIR"
}
