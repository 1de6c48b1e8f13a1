"""Flow 5b: study documentation from Ladok to the digital archive (e-arkiv) as E-ARK SIP 2.1 /
FGS 2.0 packages. ``planning`` picks the course instances whose study period has ended,
``packaging`` writes the packages, ``delivery`` sends them through the outbox and records the
receipts. See docs/flows/archive.md."""
