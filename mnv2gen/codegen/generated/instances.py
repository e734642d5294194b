"""The set of specialised kernel functions one generated file defines.

Instances with equal constants are one function (`mnv2_gk<N>`, numbered in order of
first use), so layers of identical shape share their loop bodies; templates/gen/
instances.c.j2 renders each kind.
"""

from __future__ import annotations

import jinja2

from mnv2gen.codegen.generated.kernels import Call, Instance


class InstanceSet:
    """Collects the instances the calls of one generated file use."""

    def __init__(self, prefix: str = "mnv2_gk") -> None:
        self.prefix = prefix
        self._names: dict[Instance, str] = {}

    def name(self, call: Call | Instance) -> str:
        """Return the C function name of an instance, adding it if new."""
        instance = call.instance if isinstance(call, Call) else call
        if instance not in self._names:
            self._names[instance] = f"{self.prefix}{len(self._names)}"
        return self._names[instance]

    def call(self, call: Call) -> dict:
        """Return what a call site template needs: function name and array symbols."""
        return {"name": self.name(call), "arrays": call.arrays, "kind": call.instance.kind,
                "out_c": call.out_c}

    def definitions(self, env: jinja2.Environment) -> str:
        """Return the C definitions of every instance, in order of first use."""
        module = env.get_template("gen/instances.c.j2").module
        return "\n".join(str(getattr(module, i.kind)(name, dict(i.constants))).strip() + "\n"
                         for i, name in self._names.items())

    def instances(self) -> list[Instance]:
        """Return the instances in order of first use."""
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)
