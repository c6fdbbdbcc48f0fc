import connector.defs

defs = connector.defs.build_definitions()
