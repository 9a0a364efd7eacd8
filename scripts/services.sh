#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer for the test suite, starting local servers when they
# are installed but stopped. Where neither is installed, the tests that need them skip
# (or fail under CI=true, which must never pass by skipping).
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: not available (its tests will skip; fail under CI)"

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  fi
fi
redis_up && echo "Redis: up" || echo "Redis: not available (its tests will skip; fail under CI)"
exit 0
