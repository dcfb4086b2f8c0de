/*-------------------------------------------------------------------------
 *
 * create_rotate.h
 *	  apikey_create and apikey_rotate (create_rotate.c), and the setting
 *	  apikey.default_prefix they read.
 *
 *-------------------------------------------------------------------------
 */
#ifndef APIKEY_CREATE_ROTATE_H
#define APIKEY_CREATE_ROTATE_H

extern void apikey_create_rotate_init(void);

#endif							/* APIKEY_CREATE_ROTATE_H */
