#!/usr/bin/env bash
# Issue 25's scenario against a real PostgreSQL restart, not a proxy: 2 workers on 10 trials x 3 epochs
# of 2,000 images, the server restarted (pg_ctlcluster restart) 25 s in. Runs on a cluster of its own
# ("faults", port 5499; make it first: pg_createcluster 15 faults -p 5499 -- --auth=trust && pg_ctlcluster
# --skip-systemctl-redirect 15 faults start), so tests using the main cluster are not disturbed.
# Prints both workers' output, their exit codes, the tracebacks counted and the trials by state.
set -u
cd "$(dirname "$0")/.."
V=$(ls /etc/postgresql)
psql -h 127.0.0.1 -p 5499 -U postgres -c 'DROP DATABASE IF EXISTS faults' -q postgres
psql -h 127.0.0.1 -p 5499 -U postgres -c 'CREATE DATABASE faults' -q postgres
URL=postgresql+psycopg://postgres@127.0.0.1:5499/faults
T=$(mktemp -d)
cat > $T/pgr.toml <<TOML
[study]
name = "pgr"
seed = 7
trials = 10
epochs = 3
batch_size = 16
train_subset = 2000
test_subset = 10
retrain = false
[model]
type = "autoencoder"
[space.latent_dim]
choices = [2, 3, 4]
[space.weight_decay]
choices = [0.0]
[space.optimizer]
choices = ["Adam", "RMSprop"]
[space.lr]
draw = "normal"
mean = 1e-3
std = 1e-3
size = 10
[space.nh1]
choices = [50]
TOML
export MNIST_HPO_HEARTBEAT=${MNIST_HPO_HEARTBEAT:-2} PYTHONPATH=$PWD MNIST_HPO_DATA=$PWD/data MNIST_HPO_STORAGE_DIR=$T/storage
.venv/bin/python -m mnist_hpo worker $T/pgr.toml --storage $URL --quiet > $T/w1.log 2>&1 &
P1=$!
.venv/bin/python -m mnist_hpo worker $T/pgr.toml --storage $URL --quiet > $T/w2.log 2>&1 &
P2=$!
sleep 25
date +%T; pg_ctlcluster --skip-systemctl-redirect $V faults restart; date +%T
wait $P1; C1=$?; wait $P2; C2=$?
echo "exit codes: $C1 $C2"
echo "--- w1"; cat $T/w1.log; echo "--- w2"; cat $T/w2.log
echo "tracebacks: $(cat $T/w1.log $T/w2.log | grep -c Traceback)"
psql -h 127.0.0.1 -p 5499 -U postgres -At -c "select state, count(*) from trials group by state" faults
psql -h 127.0.0.1 -p 5499 -U postgres -At -c "select count(distinct (select string_agg(param_name||'='||param_value::text, ',' order by param_name) from trial_params p where p.trial_id=t.trial_id)) from trials t where state='COMPLETE'" faults
