"""The package as a user installs it: `pip install` of this folder into a fresh virtual environment (with the
system's numpy, msgpack and setuptools, nothing downloaded), then the README's Python loop run there unchanged,
against this checkout's CLI; and a clear error when the CLI cannot be found."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from helpers import CLI, environment, make_recipe, scratch  # noqa: E402

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(os.path.dirname(PACKAGE), "README.md")


def readme_loop() -> str:
    """The README's Python example (the first ```python block)."""
    text = open(README, encoding="utf-8").read()
    return text.split("```python\n", 1)[1].split("```", 1)[0]


class Package(unittest.TestCase):
    def test_pip_installs_and_the_readme_loop_runs_unchanged(self):
        venv = tempfile.mkdtemp(prefix="octomix-venv-")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        install = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "-q", PACKAGE], capture_output=True, text=True)
        self.assertEqual(install.returncode, 0, install.stderr)
        folder = scratch()
        recipe = make_recipe(folder)
        # The README's loop, with the names it assumes (a model, a rank, a saved state) defined around it.
        program = textwrap.dedent(f"""
            import json, os
            os.chdir({folder!r})
            rank, world_size, saved_state = 0, 1, None
            steps = []
            def model(*tensors):
                steps.append(int(tensors[0].shape[0]))
                return 0.0
        """) + readme_loop().replace('"recipe.yaml"', repr(recipe)).replace('"long"', "None").replace('batch.to_torch("cuda")', "batch.to_torch()") + textwrap.dedent("""
            print(json.dumps({"steps": len(steps), "state": saved_state}))
        """)
        env = dict(environment(folder), OCTOMIX_CLI=" ".join(CLI))
        env.pop("PYTHONPATH")  # only the installed package
        result = subprocess.run([python, "-c", program], capture_output=True, text=True, env=env, timeout=120, cwd=folder)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = __import__("json").loads(result.stdout)
        self.assertEqual(out["steps"], 60)  # 30 global steps of 4 sequences, in micro-batches of 2
        self.assertEqual((out["state"]["step"], out["state"]["microBatch"]), (30, 0))
        check = subprocess.run([python, "-c", "import octomix, octomix.client; print(octomix.__file__)"], capture_output=True, text=True, env=env)
        self.assertTrue(check.stdout.strip().startswith(venv), check.stdout)

    def test_a_missing_cli_is_a_clear_error(self):
        sys.path.insert(0, PACKAGE)
        from octomix import OctomixServerError, find_cli
        with self.assertRaises(OctomixServerError) as raised:
            saved = os.environ.pop("OCTOMIX_CLI", None)
            old = os.getcwd()
            try:
                os.chdir(tempfile.mkdtemp())
                import octomix.client as client
                original = client.__file__
                client_path = os.path.join(tempfile.mkdtemp(), "octomix", "client.py")
                client.__file__ = client_path  # as if installed away from the npm package
                try:
                    env_path = os.environ["PATH"]
                    os.environ["PATH"] = "/nonexistent"
                    try:
                        find_cli()
                    finally:
                        os.environ["PATH"] = env_path
                finally:
                    client.__file__ = original
            finally:
                os.chdir(old)
                if saved is not None:
                    os.environ["OCTOMIX_CLI"] = saved
        self.assertEqual(raised.exception.code, "CLI_MISSING")
        self.assertIn("OCTOMIX_CLI", raised.exception.message)


if __name__ == "__main__":
    unittest.main()
