"""Committee of External Improvement: tree-felling permits and stormwater conditions."""
