"""Generation engines: plug-ins behind one protocol, chosen per job by the registry."""
