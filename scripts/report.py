"""report.py - what the scripts that write docs/ (results.py, recipe.py, findings.py)
share: the machine they ran on and the commands they ran."""

import os
import platform
import shlex


def machine():
    """'CPU model, N cores, OS release' of this machine."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s %s" % (cpu, os.cpu_count() or 0, platform.system(), platform.release())


def commands_section(commands):
    """The '## Commands' section: every command, shell-quoted, one per line."""
    return ["## Commands", "", "```sh"] + [" ".join(shlex.quote(c) for c in cmd)
                                           for cmd in commands] + ["```", ""]
