INSERT INTO bench_plain (client, v) VALUES (:client_id, random());
