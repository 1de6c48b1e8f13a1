"""Simulators of the peers Brygga cannot reach: they keep state, apply the real rules and speak
the real protocols over HTTP on loopback (Ladok REST + Atom, NyA SOAP, population register)."""
