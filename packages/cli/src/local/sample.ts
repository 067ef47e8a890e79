/**
 * A small, realistic shop database for the demo and the tests: identity keys, foreign keys, an enum, numeric money,
 * arrays, jsonb, timestamps, a view, a function with a trigger, an index, and comments. Deterministic (setseed).
 */
export function sampleDatabaseSql(scale = 1): string {
  const customers = 2000 * scale;
  const products = 200 * scale;
  const orders = 10000 * scale;
  return `
select setseed(0.42);
create type order_status as enum ('pending', 'paid', 'shipped', 'cancelled');
create table customers (
  id bigint generated always as identity primary key,
  email text not null unique,
  name text not null,
  country char(2) not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table customers is 'People who buy things';
create table products (
  id bigint generated always as identity primary key,
  sku text not null unique,
  name text not null,
  price numeric(10,2) not null check (price >= 0),
  tags text[] not null default '{}',
  attributes jsonb not null default '{}'
);
create table orders (
  id bigint generated always as identity primary key,
  customer_id bigint not null references customers(id),
  status order_status not null,
  placed_at timestamptz not null
);
create index orders_customer_idx on orders(customer_id, placed_at desc);
create table order_items (
  order_id bigint not null references orders(id) on delete cascade,
  product_id bigint not null references products(id),
  quantity int not null check (quantity > 0),
  unit_price numeric(10,2) not null,
  primary key (order_id, product_id)
);
create function touch_updated_at() returns trigger language plpgsql as $$
begin new.updated_at := now(); return new; end $$;
create trigger customers_touch before update on customers for each row execute function touch_updated_at();
create view customer_totals as
  select c.id, c.email, count(distinct o.id) as orders, coalesce(sum(i.quantity * i.unit_price), 0) as spent
  from customers c left join orders o on o.customer_id = c.id left join order_items i on i.order_id = o.id
  group by c.id, c.email;

insert into customers (email, name, country, created_at)
select 'customer' || g || '@example.com', 'Customer ' || g || ' Ünïcødé',
       (array['FR','DE','US','GB','JP','BR'])[1 + (g % 6)], timestamptz '2024-01-01' + g * interval '37 minutes'
from generate_series(1, ${customers}) g;
insert into products (sku, name, price, tags, attributes)
select 'SKU-' || lpad(g::text, 5, '0'), 'Product ' || g, round((random() * 200 + 1)::numeric, 2),
       array['tag' || (g % 7), 'tag' || (g % 11)], jsonb_build_object('weight_g', g * 10, 'color', (array['red','green','blue'])[1 + g % 3])
from generate_series(1, ${products}) g;
insert into orders (customer_id, status, placed_at)
select 1 + (random() * (${customers} - 1))::int, (array['pending','paid','shipped','cancelled']::order_status[])[1 + (g % 4)],
       timestamptz '2025-01-01' + g * interval '13 minutes'
from generate_series(1, ${orders}) g;
insert into order_items (order_id, product_id, quantity, unit_price)
select o.id, p.product_id, 1 + (random() * 4)::int, pr.price
from orders o
cross join lateral (select distinct 1 + ((o.id * k * 7919) % ${products}) as product_id from generate_series(1, 3) k) p
join products pr on pr.id = p.product_id;
analyze;
`;
}
