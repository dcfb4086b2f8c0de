-- catalog_snapshot.sql: every catalog fact of the installed apikey
-- extension, one line each, in a stable order, so that two databases can be
-- diffed (test/shell/upgrade.sh: 1.0 updated to 1.1 against a fresh 1.1).
-- Names, never OIDs; columns in their visible order, ignoring dropped ones.
\pset format unaligned
\pset tuples_only on
WITH ext AS (
	SELECT oid, extnamespace FROM pg_catalog.pg_extension WHERE extname = 'apikey'
), members AS (
	SELECT d.classid, d.objid
	  FROM pg_catalog.pg_depend d, ext
	 WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid
	   AND d.deptype = 'e'
), rels AS (
	SELECT c.* FROM pg_catalog.pg_class c, ext WHERE c.relnamespace = ext.extnamespace
), facts(line) AS (
	SELECT 'extension ' || e.extname || ' ' || e.extversion || ' relocatable=' || e.extrelocatable
		   || ' config=' || coalesce((SELECT string_agg(x::regclass::text, ',' ORDER BY x::regclass::text)
									   FROM unnest(e.extconfig) x), '')
		   || ' conditions=' || coalesce(array_to_string(e.extcondition, ','), '')
	  FROM pg_catalog.pg_extension e WHERE e.extname = 'apikey'
	UNION ALL
	SELECT 'member ' || pg_catalog.pg_describe_object(classid, objid, 0) FROM members
	UNION ALL
	SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '')
	  FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
	UNION ALL
	SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
		   || ' force=' || c.relforcerowsecurity || ' options=' || coalesce(c.reloptions::text, '')
		   || ' acl=' || coalesce(c.relacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
	  FROM rels c
	UNION ALL
	SELECT 'column ' || c.relname || ' #' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
		   || ' ' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		   || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text
		   || ' default=' || coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
		   || ' acl=' || coalesce(a.attacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.col_description(c.oid, a.attnum), '')
	  FROM rels c
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
	UNION ALL
	SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid)
	  FROM rels c JOIN pg_catalog.pg_constraint k ON k.conrelid = c.oid
	UNION ALL
	SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
	  FROM rels c JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
	UNION ALL
	SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
		   || ' comment=' || coalesce(pg_catalog.obj_description(t.oid, 'pg_trigger'), '')
	  FROM rels c JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
	UNION ALL
	SELECT 'policy ' || c.relname || ' ' || p.polname || ' cmd=' || p.polcmd::text
		   || ' permissive=' || p.polpermissive
		   || ' roles=' || (SELECT string_agg(r::regrole::text, ',' ORDER BY r::regrole::text)
							  FROM unnest(p.polroles) r)
		   || ' using=' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
		   || ' check=' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_policy'), '')
	  FROM rels c JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
	UNION ALL
	SELECT 'view ' || c.relname || ' ' || pg_catalog.pg_get_viewdef(c.oid)
	  FROM rels c WHERE c.relkind = 'v'
	UNION ALL
	SELECT 'sequence ' || c.relname || ' ' || s.seqtypid::regtype || ' ' || s.seqstart || ' '
		   || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
	  FROM rels c JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
	UNION ALL
	SELECT 'function ' || p.oid::regprocedure::text || ' parallel=' || p.proparallel::text
		   || ' leakproof=' || p.proleakproof || ' acl=' || coalesce(p.proacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
		   || E'\n' || pg_catalog.pg_get_functiondef(p.oid)
	  FROM pg_catalog.pg_proc p, ext WHERE p.pronamespace = ext.extnamespace
	UNION ALL
	SELECT 'type ' || t.typname || ' type=' || t.typtype::text || ' acl=' || coalesce(t.typacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(t.oid, 'pg_type'), '')
	  FROM pg_catalog.pg_type t, ext WHERE t.typnamespace = ext.extnamespace
	UNION ALL
	SELECT 'role ' || r.rolname || ' login=' || r.rolcanlogin || ' super=' || r.rolsuper
		   || ' bypassrls=' || r.rolbypassrls
	  FROM pg_catalog.pg_roles r WHERE r.rolname IN ('apikey_admin', 'apikey_manager', 'apikey_verifier')
)
SELECT line FROM facts ORDER BY line;
