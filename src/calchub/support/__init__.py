"""Client error reports, client telemetry and (later) support tickets."""
