// E-commerce: revenue, orders and the shop's rates against the previous period; revenue and
// orders over time; products and categories (a click filters every report by it); lifetime
// value of the people acquired in the range, by month and by first channel.
import { $, h, fmtInt, fmtPct, fmtMoney, fmtDec, num, pickRow, table } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, previousRange, interval, addFilter } from '../lib/state.js';
import { fill, empty } from '../lib/panel.js';
import { kpiCards } from '../lib/kpis.js';
import { lineChart, barChart, halfOf } from '../lib/charts.js';

export const KPIS = [
  { key: 'revenue', label: 'Revenue (net of refunds)', fmt: fmtMoney },
  { key: 'orders', label: 'Orders', fmt: fmtInt },
  { key: 'average_order_value', label: 'Average order value', fmt: fmtMoney },
  { key: 'purchase_conversion_rate_sessions', label: 'Purchase conversion', fmt: fmtPct, rate: true },
  { key: 'cart_abandonment_rate', label: 'Cart abandonment', fmt: fmtPct, rate: true, lower: true },
  { key: 'checkout_abandonment_rate', label: 'Checkout abandonment', fmt: fmtPct, rate: true, lower: true },
  { key: 'repeat_purchase_rate', label: 'Repeat-purchase rate', fmt: fmtPct, rate: true },
  { key: 'purchase_frequency', label: 'Orders per buyer', fmt: fmtDec },
];
const LIMIT = 20;
let lastSeries = null;

// The category filtered by, if any: the products table then lists that category's products only
// (an order with a teapot and a mug matches `category is teapots`, the mug's row is left out).
const filteredCategory = () => state.filters.find((f) => f.dimension === 'category' && (f.op || 'is') === 'is' && f.values.length === 1)?.values[0] || '';

export async function show() {
  const base = common();
  const { from, to } = base.date_range;
  // One request per part, so each panel shows as soon as its own query is done: the KPIs (this
  // period's and the previous period's totals), the chart, the item lists, lifetime value.
  const items = report('ecommerce', { ...base, limit: LIMIT, sections: ['items'] });
  await Promise.all([
    fill($('#shop-kpis'), () => Promise.all([
      report('ecommerce', { ...base, sections: ['totals'] }),
      report('ecommerce', { ...common(previousRange()), sections: ['totals'] }),
    ]), ([r, p]) => kpiCards(KPIS, r.totals, p.totals)),
    fill($('#shop-chart'), () => report('trends', {
      ...base, metrics: ['events', 'revenue'], event: 'purchase', interval: interval(from, to),
    }), (r) => { lastSeries = r; return charts(r); }),
    fill($('#shop-products'), () => items, products),
    fill($('#shop-categories'), () => items, categories),
    fill($('#shop-ltv'), () => report('ecommerce', { ...base, sections: ['ltv'] }), ltv),
  ]);
}

function charts(r) {
  const s = r.results[0]?.series || [];
  if (!s.some((p) => p.events)) return empty('No orders in this range.');
  const box = halfOf($('#shop-chart'));
  const labels = s.map((p) => p.bucket);
  return [h('div', { class: 'twin' },
    h('div', {}, h('h3', {}, 'Revenue (net)'), lineChart(box, { lines: [{ values: s.map((p) => p.revenue ?? 0), cls: 'cur' }], labels, fmt: fmtMoney, interval: r.interval, label: `Revenue per ${r.interval}` })),
    h('div', {}, h('h3', {}, 'Orders'), lineChart(box, { lines: [{ values: s.map((p) => p.events ?? 0), cls: 'cur' }], labels, fmt: fmtInt, interval: r.interval, label: `Orders per ${r.interval}` })))];
}

const HEAD = ['#Views', '#Add to carts', '#Units', '#Revenue', '#View → purchase', '#Viewed, not bought'];
const cells = (p) => [num(p.views), num(p.add_to_carts), num(p.units), num(p.revenue, fmtMoney), num(p.view_to_purchase_rate, fmtPct), num(p.viewed_not_bought)];

function products(r) {
  const cat = filteredCategory();
  const list = r.products.filter((p) => !cat || p.category === cat);
  const head = h('h2', {}, cat ? `Products in ${cat}` : 'Products');
  if (!list.length) return [head, h('p', { class: 'empty' }, cat ? `None of the top ${LIMIT} products is in ${cat}.` : 'No product events (items) in this range.')];
  return [head, h('p', { class: 'muted' }, 'Click a product to see every report for the events that hold it.'), h('div', { class: 'scroll' }, table(['Product', 'Category', ...HEAD],
    list.map((p) => pickRow(`Filter by product ${p.name || p.key}`, () => addFilter('product', p.key), { dataset: { key: p.key } },
      h('td', { title: p.key }, p.name || p.key), h('td', {}, p.category ?? ''), cells(p))), 'Products by revenue'))];
}

function categories(r) {
  if (!r.categories.length) return [h('h2', {}, 'Categories'), h('p', { class: 'empty' }, 'No categories in this range.')];
  return [h('h2', {}, 'Categories'), h('p', { class: 'muted' }, 'Click a category to filter by it and list its products.'), h('div', { class: 'scroll' }, table(['Category', ...HEAD],
    r.categories.map((c) => pickRow(`Filter by category ${c.key}`, () => addFilter('category', c.key), { dataset: { key: c.key }, 'aria-pressed': String(filteredCategory() === c.key) }, h('td', {}, c.key), cells(c))), 'Categories by revenue'))];
}

function ltv(r) {
  if (!r.ltv_by_cohort.length) return empty('Nobody was acquired in this range.');
  const box = halfOf($('#shop-ltv'));
  const part = (title, list, id) => h('div', { id }, h('h3', {}, title),
    barChart(box, { values: list.map((x) => x.revenue_per_person), labels: list.map((x) => x.key ?? '(none)'), fmt: fmtMoney, label: `${title}: revenue per acquired person` }),
    h('div', { class: 'scroll' }, table(['', '#People', '#Buyers', '#Revenue', '#Per person'],
      list.map((x) => h('tr', { dataset: { key: x.key ?? '' } }, h('td', {}, x.key ?? '(none)'), num(x.people), num(x.buyers), num(x.revenue, fmtMoney), num(x.revenue_per_person, fmtMoney))))));
  return [h('h2', {}, 'Lifetime value of the people acquired in this range'),
    h('p', { class: 'muted' }, 'Net revenue from their first visit to the end of the range, per person acquired.'),
    h('div', { class: 'twin' }, part('By acquisition month', r.ltv_by_cohort, 'ltv-cohort'), part('By first channel', r.ltv_by_channel, 'ltv-channel'))];
}

export function resize() {
  if (lastSeries && $('#shop-chart').dataset.state === 'ready') $('#shop-chart').replaceChildren(...charts(lastSeries));
}
