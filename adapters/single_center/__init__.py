"""Single Center for Municipal Services: the front office that files citizens' applications."""
