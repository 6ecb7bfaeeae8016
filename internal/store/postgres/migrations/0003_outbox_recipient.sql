-- The development mailbox, the console and tests look up mail by recipient.
CREATE INDEX outbox_recipient ON outbox (recipient, id);
