"""One conversation per referral between the patient and the coordinators: what the patient
writes on the private page, their SMS and WhatsApp replies, and the coordinators' answers."""
