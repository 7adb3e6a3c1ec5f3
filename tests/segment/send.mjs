// Sends calls with Segment's own Node SDK (@segment/analytics-node, pinned by package-lock.json)
// to a footfall started by tests/it/segment_api.rs. Usage: node send.mjs HOST WRITE_KEY.
// Exits 1 if the SDK reports an error.
import { Analytics } from '@segment/analytics-node';

const [host, writeKey] = process.argv.slice(2);
const errors = [];
const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 3, flushInterval: 200 });
analytics.on('error', (e) => errors.push(String(e?.reason ?? e?.message ?? e)));
const anonymousId = 'node-anon-01';
analytics.identify({ userId: 'n-1', anonymousId, traits: { plan: 'team' }, messageId: 'node-identify-01' });
analytics.track({ userId: 'n-1', anonymousId, event: 'Product Added', properties: { product_id: 'kettle-7', price: 49, quantity: 1, category: 'kettles' }, messageId: 'node-cart-0001' });
analytics.track({ userId: 'n-1', anonymousId, event: 'Checkout Started', properties: { revenue: 49, currency: 'EUR', products: [{ product_id: 'kettle-7', price: 49, quantity: 1 }] }, messageId: 'node-checkout-1' });
analytics.track({ userId: 'n-1', anonymousId, event: 'Order Refunded', properties: { order_id: 'o-9', total: 49, currency: 'EUR' }, messageId: 'node-refund-01' });
analytics.screen({ userId: 'n-1', anonymousId, name: 'Basket', messageId: 'node-screen-01' });
await analytics.closeAndFlush({ timeout: 10000 });
if (errors.length) {
  console.log(errors.join('\n'));
  process.exit(1);
}
console.log('sent');
