"""Running the user's code safely: loading the file (``loading``), calling it with copies and a time limit
(``guard``), watching the process (``supervise``), stepping through it (``drive``), and binding it to the internal
layout by convention (``conventions``, ``detect``)."""
