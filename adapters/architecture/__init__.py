"""Department of Architecture and Urban Planning: appearance approvals and signage projects."""
