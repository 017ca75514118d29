"""Management of Urban-Planning Permits: excavation permits and urban-plan extracts."""
