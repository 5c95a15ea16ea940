"""Structured control flow: loops and branches kept rolled (the API reference, section 8).

Each form is one IR node holding its bodies as sub-graphs (``Node.bodies``), with
one projection node (``proj``) per result.  :mod:`.body` traces a Python function
into a sub-graph (values of enclosing traces become extra body inputs),
:mod:`.scan` builds ``scan``/``fori_loop`` and their reverse mode, :mod:`.while_`
``while_loop``, :mod:`.branches` ``cond``/``switch``; :mod:`.emit` writes them as
Python ``for``/``while``/``if`` statements and evaluates them.
"""
