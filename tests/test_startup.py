"""Start-up: what the API, the worker and `make run` load, and when.

No timing here (machines are noisy): `benchmarks/startup_bench.py` measures. These tests pin
the causes of a slow start: network SDKs imported with the app, a worker that builds the app
again in every job, a supervisor that builds an app it never uses.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from app import networks

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_importing_the_app_leaves_network_sdks_unloaded():
    """atproto alone took 1.6 s of a 4.7 s `import wsgi`; Authlib and httpx most of the rest
    of what the connectors need. They load with the first call to a network."""
    loaded = _python(
        "import sys, wsgi, workers.worker\n"
        "heavy = ('atproto', 'atproto_client', 'authlib', 'httpx', 'stripe', 'mastodon')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    assert loaded == "[]"


def test_a_connector_loads_on_first_use():
    loaded = _python(
        "import sys\n"
        "from app.networks import connector_for\n"
        "before = 'atproto' in sys.modules\n"
        "connector = connector_for('bluesky')\n"
        "print(before, 'atproto' in sys.modules, connector is connector_for('bluesky'))\n"
    )
    assert loaded == "False True True"


def test_the_network_names_match_their_connectors():
    # The names are written out (so that naming them loads nothing): keep them true.
    for network, target in networks._CONNECTOR_CLASSES.items():
        module_name, class_name = target.split(":")
        connector_class = getattr(importlib.import_module(module_name), class_name)
        assert connector_class.network == network
        assert connector_class.uses_oauth == (network in networks.OAUTH_NETWORKS), network
    assert set(networks.DIRECT_NETWORKS) <= set(networks._CONNECTOR_CLASSES)


def test_the_worker_builds_the_app_before_it_forks(database, redis_url):
    """A plain `rq worker` imported and built the app in every job's fork (~10 s a job)."""
    code = """
import sys
from pathlib import Path
import redis
from rq import Queue
from rq.serializers import JSONSerializer
from workers import context
from workers.worker import RelaisWorker

connection = redis.Redis.from_url(sys.argv[1])
queue = Queue("startup-test", connection=connection, serializer=JSONSerializer)
worker = RelaisWorker([queue], connection=connection, serializer=JSONSerializer)
assert context._app is not None, "the app is not built in the parent"
job = queue.enqueue("workers.jobs.maintenance.purge_expired_records")
worker.work(burst=True)
print(job.get_status(refresh=True).value)
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database.app_url,
        "RELAIS_ENV": "development",
    }
    assert _python(code, redis_url, env=env).splitlines()[-1] == "finished"


def test_run_embedded_does_not_build_the_app():
    """`make run`'s supervisor only starts processes; building the app there cost a full import
    before anything else could start."""
    built = _python(
        "import sys\n"
        "from app.cli import main\n"
        "try:\n"
        "    main(['run-embedded', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('app.api' in sys.modules, 'flask_smorest' in sys.modules)\n"
    )
    assert built.splitlines()[-1] == "False False"
