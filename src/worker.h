/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker that writes usage and the verification log
 *	  (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_WORKER_H
#define APIKEY_WORKER_H

extern void apikey_worker_init(void);

#endif							/* APIKEY_WORKER_H */
