"""The environment of an engine process: a minimal one, never grade's own (harness.sandbox.environment)."""

from harness.sandbox.environment import engine_env

GRADER = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
          "PYTHON_KEYRING_PASSWORD": "k", "GITHUB_TOKEN": "ghp_secret", "AWS_SECRET_ACCESS_KEY": "aws",
          "HOME": "/root", "PYTHONPATH": "/elsewhere", "HARNESS_PLUGINS": "course_plugin",
          "COURSE_SEED": "7", "COURSE_DATA": "/data"}


def test_secrets_stay_behind_and_what_the_interpreter_and_harness_need_passes():
    env = engine_env(GRADER, "/tmp/grade-worker-x", "/harness:/extra")
    assert env == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
                   "HARNESS_PLUGINS": "course_plugin", "HOME": "/tmp/grade-worker-x",
                   "PYTHONPATH": "/harness:/extra", "PYTHONFAULTHANDLER": "1"}


def test_harness_engine_env_passes_named_variables_and_prefixes():
    env = engine_env(dict(GRADER, HARNESS_ENGINE_ENV="COURSE_SEED, AWS_*"), "/w", "/h")
    assert env["COURSE_SEED"] == "7" and env["AWS_SECRET_ACCESS_KEY"] == "aws"
    assert "COURSE_DATA" not in env and "GITHUB_TOKEN" not in env and "HARNESS_ENGINE_ENV" not in env


def test_a_lone_star_passes_everything_but_home_and_the_harness_path_stay_the_engines():
    env = engine_env(dict(GRADER, HARNESS_ENGINE_ENV="*"), "/w", "/h")
    assert env["GITHUB_TOKEN"] == "ghp_secret" and env["HOME"] == "/w" and env["PYTHONPATH"] == "/h"
