"""Renders chat templates as transformers' apply_chat_template does (its _compile_jinja_template): Jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension, a tojson filter that
keeps non-ASCII, raise_exception, and strftime_now only when a date is given (octomix's rule for a fixed corpus).

stdin: JSON {"template": str, "variables": {...}, "date": "YYYY-MM-DD" | null, "cases": [{"messages": [...],
"add_generation_prompt": bool}, ...]}; stdout: JSON list of rendered strings (or {"error": message}).
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def main():
    request = json.load(sys.stdin)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    if request.get("date"):
        day = datetime.datetime.strptime(request["date"], "%Y-%m-%d")
        env.globals["strftime_now"] = lambda format: day.strftime(format)
    template = env.from_string(request["template"])
    out = []
    for case in request["cases"]:
        try:
            out.append(template.render(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"], **request["variables"]))
        except Exception as error:  # the message is compared, not the type
            out.append({"error": str(error)})
    json.dump(out, sys.stdout, ensure_ascii=False)


main()
