-- place_orders: one transaction, one result per order in order; bad orders are rejected rows.
SELECT status, reject_reason, filled_quantity, remaining_quantity
  FROM exchange.place_orders('[
    {"client_id": "b1", "instrument": "SOL-USD", "side": "sell", "type": "limit", "quantity": "2", "price": "50"},
    {"client_id": "b2", "instrument": "SOL-USD", "side": "buy", "type": "limit", "quantity": 1, "price": 50},
    {"client_id": "b3", "instrument": "NOPE", "side": "buy", "type": "limit", "quantity": 1, "price": 50},
    {"client_id": "b3", "instrument": "SOL-USD", "side": "buy", "type": "limit", "quantity": "abc", "price": 50},
    {"client_id": "b4", "instrument": "SOL-USD", "side": "buy", "type": "market", "quantity": 5},
    "not an object"
  ]');
SELECT try($$SELECT exchange.place_orders('{}')$$);
SELECT count(*) FROM exchange.place_orders('[]');
SELECT healthy('SOL-USD');
