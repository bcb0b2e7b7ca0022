"""The key vault: master keys (``master``), wrapped data keys and their life cycle
(``keys``), the role-checked key provider for the operators (``provider``), access checks by
role membership of the connected login (``access``), re-identification for stewards
(``reidentify``) and the hash-chained audit log (``audit``). Knows nothing of Airflow."""
