"""A local HTTP emulator of the Adobe Target bulk profile API and Copernica's REST profile API.

Independent of the rest of ``connector`` (it imports only ``connector.sandbox.*``), so an
encoding bug in the connector's writer cannot cancel out against the same bug here.
"""

from connector.sandbox.app import create_app
from connector.sandbox.options import Faults, SandboxOptions
from connector.sandbox.state import Sandbox

__all__ = ["Faults", "Sandbox", "SandboxOptions", "create_app"]
