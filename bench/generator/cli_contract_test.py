"""The command line of both load generators, as bench/run.py and people meet it: the same options
in the same order with the same help, refusals with exit status 2 that name the program, and each
program's own refusals. Nothing here opens a connection: every command line is refused first.

    cli_contract_test.py --wscoro-bench PATH --epoll-bench PATH [unittest arguments]
"""
import subprocess
import sys
import unittest

PROGRAMS: dict[str, str] = {}  # program name -> path, from the command line
URL = "ws://127.0.0.1:1/"  # never contacted


def run(name: str, *args: str) -> tuple[int, str, str]:
    p = subprocess.run([PROGRAMS[name], *args], capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


class CliContractTest(unittest.TestCase):
    def test_help_lists_the_same_options_in_both(self):
        helps = {}
        for name in PROGRAMS:
            code, out, err = run(name, "--help")
            self.assertEqual(code, 0, err)
            self.assertTrue(out.startswith(f"{name}: WebSocket load generator"), out)
            # Past the description and usage lines only --scenario's help may differ.
            helps[name] = [line for line in out.splitlines()[2:] if "--scenario" not in line]
        first, second = helps.values()
        self.assertEqual(first, second)
        self.assertIn("  --size BYTES=32             payload bytes (S): 32, 64k, 64KiB, 1MiB", first)

    def test_bad_values_exit_2_naming_the_program(self):
        cases = [
            (["--scenario", "echo"], "--url is required (see --help)"),
            (["--url", URL, "--scenario", "echo", "--size", "2g"],
             '--size: unknown unit "g" (use k/KiB or m/MiB) (see --help)'),
            (["--url", URL, "--scenario", "broadcast", "--size", "19"],
             "--size: at least 20 bytes (the verifiable header)"),
            (["--url", URL, "--scenario", "echo", "--duration", "0"], "--duration: must be positive"),
            (["--url", URL, "--scenario", "echo", "--bogus"],
             "The following argument was not expected: --bogus (see --help)"),
        ]
        for name in PROGRAMS:
            for args, message in cases:
                with self.subTest(program=name, args=args):
                    code, out, err = run(name, *args)
                    self.assertEqual(code, 2)
                    self.assertEqual(out, "")
                    self.assertEqual(err, f"{name}: {message}\n")

    def test_each_program_refuses_what_only_it_refuses(self):
        code, _, err = run("wscoro-bench", "--url", URL, "--scenario", "nope")
        self.assertEqual((code, err), (2, 'wscoro-bench: --scenario: "nope" is not echo, broadcast '
                                          "or connect (see --help)\n"))
        code, _, err = run("wscoro-bench", "--url", "http://x/", "--scenario", "echo")
        self.assertEqual((code, err), (2, 'wscoro-bench: --url: invalid URL "http://x/": scheme '
                                          "must be ws://, not http://\n"))
        code, _, err = run("wscoro-bench-epoll", "--url", URL, "--scenario", "nope")
        self.assertEqual((code, err), (2, 'wscoro-bench-epoll: --scenario: "nope" is not echo or '
                                          "broadcast (see --help)\n"))
        # Refused before the payload size is checked: the scenario is the first thing wrong.
        code, _, err = run("wscoro-bench-epoll", "--url", URL, "--scenario", "connect", "--size", "1")
        self.assertEqual((code, err), (2, "wscoro-bench-epoll: --scenario connect: not in this "
                                          "generator; use wscoro-bench\n"))
        code, _, err = run("wscoro-bench-epoll", "--url", "http://x/", "--scenario", "echo")
        self.assertEqual((code, err), (2, "wscoro-bench-epoll: --url: expected ws://host[:port][/path]\n"))


def main() -> None:
    argv = sys.argv[1:]
    for flag, name in (("--wscoro-bench", "wscoro-bench"), ("--epoll-bench", "wscoro-bench-epoll")):
        if flag not in argv or argv.index(flag) + 1 >= len(argv):
            sys.exit(__doc__)
        i = argv.index(flag)
        PROGRAMS[name] = argv[i + 1]
        del argv[i:i + 2]
    unittest.main(argv=[sys.argv[0], *argv])


if __name__ == "__main__":
    main()
