/**
 * The hard parts of pg_dump/pg_restore in one database: several schemas, quoted and non-ASCII identifiers,
 * sequences with their current values, identity and generated columns, views and materialized views, functions and
 * triggers, partitioned tables, large objects, contrib extensions, comments and row-level security.
 */
export const HARD_FIXTURE_SQL = `
create extension pgcrypto;
create extension hstore;
create extension citext;
create schema billing;
comment on schema billing is 'Money in, money out';
create schema "Ünïcødé Schéma";
create table "Ünïcødé Schéma"."Tâble ""quoted""" (id int primary key, "Çolumn" text not null);
insert into "Ünïcødé Schéma"."Tâble ""quoted""" values (1, 'ü'), (2, '日本語'), (3, 'emoji 🚀');
create sequence billing.invoice_number start 1000;
select setval('billing.invoice_number', 1234);
create table billing.invoices (
  id bigint generated always as identity primary key,
  number int not null default nextval('billing.invoice_number'),
  amount numeric(12,2) not null,
  tax numeric(12,2) generated always as (amount * 0.2) stored,
  customer citext not null,
  attrs hstore,
  token bytea not null default gen_random_bytes(8)
);
comment on table billing.invoices is 'Every invoice ever sent';
comment on column billing.invoices.tax is 'computed by the database';
create function billing.normalize() returns trigger language plpgsql as $$
begin new.customer := trim(new.customer); return new; end $$;
create trigger invoices_normalize before insert or update on billing.invoices for each row execute function billing.normalize();
insert into billing.invoices (amount, customer, attrs) select g * 1.5, ' Customer ' || (g % 37) || ' ', hstore('channel', (array['web','shop','phone'])[1 + g % 3]) from generate_series(1, 600) g;
create view billing.large_invoices as select id, amount, customer from billing.invoices where amount > 500;
create materialized view billing.revenue_by_customer as select customer, sum(amount) as revenue from billing.invoices group by customer;
alter table billing.invoices enable row level security;
create policy customer_sees_own on billing.invoices using (customer = current_user::citext);
create table public.events (id int not null, at date not null, payload jsonb) partition by range (at);
create table public.events_2025 partition of public.events for values from ('2025-01-01') to ('2026-01-01');
create table public.events_2026 partition of public.events for values from ('2026-01-01') to ('2027-01-01');
insert into public.events select g, date '2025-06-01' + g, jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 5)) from generate_series(1, 400) g;
select lo_from_bytea(0, convert_to('a large object', 'UTF8'));
select lo_from_bytea(0, decode(repeat('deadbeef', 50000), 'hex'));
`;
